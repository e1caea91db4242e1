//go:build linux || freebsd || openbsd || netbsd

package app

/*
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int synctray_saved_stderr = -1;

// While Go initialises packages, fyne's lang package reads the locale with
// github.com/jeandeaual/go-locale, which takes "C.UTF-8" (Debian's default
// in containers and CI) for a language "C" and Fyne logs three lines of
// "Fyne error: Error parsing user locale C" on stderr, before main runs:
// for every synctray command, also `synctray outbox list --json`. Only
// for such a locale, this constructor (run before the Go runtime starts)
// points stderr at /dev/null until this package's init, which runs right
// after fyne's, restores it.
__attribute__((constructor)) static void synctray_quiet_locale(void) {
	const char *vars[] = {"LC_ALL", "LC_MESSAGES", "LANG"};
	const char *loc = NULL;
	for (int i = 0; i < 3 && loc == NULL; i++) {
		const char *v = getenv(vars[i]);
		if (v != NULL && v[0] != '\0') loc = v;
	}
	const char *language = getenv("LANGUAGE");
	if (loc == NULL || (language != NULL && language[0] != '\0')) return;
	if (strncmp(loc, "C.", 2) != 0 && strncmp(loc, "POSIX.", 6) != 0) return;
	int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (null < 0) return;
	synctray_saved_stderr = fcntl(2, F_DUPFD_CLOEXEC, 3);
	if (synctray_saved_stderr >= 0) dup2(null, 2);
	close(null);
}

static void synctray_restore_stderr(void) {
	if (synctray_saved_stderr >= 0) {
		dup2(synctray_saved_stderr, 2);
		close(synctray_saved_stderr);
		synctray_saved_stderr = -1;
	}
}
*/
import "C"

// Fyne's packages, imported by this one, are initialised by now.
func init() { C.synctray_restore_stderr() }
