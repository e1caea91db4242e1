/*
 * TEST MACHINES ONLY -- NEVER SHIP THIS FILE OR THE DLL BUILT FROM IT.
 *
 * A stand-in for Windows' bcryptprimitives.dll, for Debian 12's wine 8.0,
 * which lacks it. The Go runtime (>= 1.24) loads bcryptprimitives.dll at
 * start for ProcessPrng; without it every Go .exe dies under wine 8 with
 * "fatal error: bcryptprimitives.dll not found". Real Windows 10+ and
 * wine >= 9 have the real one. packaging/windows/wine-env.sh builds this
 * into a throwaway test WINEPREFIX's system32; no installer, package or
 * Makefile target for users may include it.
 *
 * ProcessPrng(pbData, cbData) fills the buffer with random bytes and
 * always returns TRUE on Windows; here it forwards to advapi32's
 * SystemFunction036 (RtlGenRandom), which takes a ULONG length.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length); /* RtlGenRandom */

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE pbData, SIZE_T cbData)
{
	while (cbData > 0) {
		ULONG n = cbData > 0x40000000 ? 0x40000000 : (ULONG)cbData;
		if (!SystemFunction036(pbData, n))
			return FALSE;
		pbData += n;
		cbData -= n;
	}
	return TRUE;
}
