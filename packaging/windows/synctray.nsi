; synctray's Windows installer (NSIS 3.08): a per-user install, no admin.
;
;   makensis -NOCD -DEXE=bin/synctray.exe -DVERSION=0.1.0 -DOUTFILE=bin/synctray-setup.exe \
;            packaging/windows/synctray.nsi                 (or: make installer)
;
; With -NOCD, paths given with -D are relative to the directory makensis runs
; in; without it makensis first changes to this script's directory.
;
; What it does:
;   - installs synctray.exe and uninstall.exe into
;     %LocalAppData%\Programs\synctray (the per-user Programs folder; /D=DIR,
;     last on the command line, picks another; a reinstall finds the old one);
;   - a Start-menu shortcut (%AppData%\Microsoft\Windows\Start Menu\Programs\synctray.lnk);
;   - optional "Start at login": HKCU\Software\Microsoft\Windows\CurrentVersion\Run,
;     value "synctray" = "<instdir>\synctray.exe" (quoted), the value the tray
;     menu's "Start at login" toggle reads and writes, so both agree;
;   - an "Apps & features" / "Add or remove programs" entry under
;     HKCU\Software\Microsoft\Windows\CurrentVersion\Uninstall\synctray.
;
; Command line (options are case-insensitive; /S is NSIS's silent mode):
;   synctray-setup.exe [/S] [/AUTOSTART=1|0] [/D=DIR]
;     /AUTOSTART=1  start at login: the component is selected (silent mode: set the Run value)
;     /AUTOSTART=0  not at login: the component is cleared (and an existing Run value removed)
;     neither       keep what is there: selected only if the Run value exists already
;                   (a fresh install: off), so a reinstall or upgrade keeps the user's choice
;   uninstall.exe [/S] [/PURGE=1]
;     /PURGE=1      also delete the user's data, %AppData%\synctray (the outbox, the
;                   API token, the session key). Without it the data is kept, so a
;                   reinstall finds the outbox as it was. Interactively it is the
;                   unchecked component "Delete my data" on the uninstaller's page.
;     The uninstaller copies itself to %TEMP% and returns at once; to wait for it:
;     uninstall.exe /S _?=<instdir> (then uninstall.exe itself stays: delete it after).
;
; Exit codes: 0 done; 1 cancelled by the user; 2 failed (a bad option, or synctray
; is running and could not be replaced: quit it from its tray menu first).
;
; Start at login is off by default: synctray never adds itself to the login
; items on its own on Linux either (the tray's toggle is opt-in), an installer
; that quietly adds a login item is a surprise (and silent deployments should
; ask for it explicitly), and the choice is one click away in the tray menu.

Unicode true
Target amd64-unicode       ; a 32-bit installer under a wine without wine32 "succeeds" and installs nothing
RequestExecutionLevel user ; per-user: never asks for admin
SetCompressor /SOLID lzma
ManifestDPIAware true

!ifndef EXE
  !error "give the program: makensis -DEXE=path\to\synctray.exe -DVERSION=x.y.z -DOUTFILE=setup.exe"
!endif
!ifndef VERSION
  !error "give the version: -DVERSION=x.y.z (from FyneApp.toml)"
!endif
!define /ifndef OUTFILE "synctray-setup.exe"
!define /ifndef PUBLISHER "The synctray authors"
!define /ifndef VIVERSION "${VERSION}.0" ; VIProductVersion wants four numbers

!define NAME "synctray"
!define UNINST_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\${NAME}"
!define RUN_KEY "Software\Microsoft\Windows\CurrentVersion\Run"

Name "${NAME}"
OutFile "${OUTFILE}"
InstallDir "$LOCALAPPDATA\Programs\${NAME}"
InstallDirRegKey HKCU "${UNINST_KEY}" "InstallLocation"
BrandingText "${NAME} ${VERSION}"

VIProductVersion "${VIVERSION}"
VIAddVersionKey "ProductName" "${NAME}"
VIAddVersionKey "ProductVersion" "${VERSION}"
VIAddVersionKey "FileVersion" "${VERSION}"
VIAddVersionKey "CompanyName" "${PUBLISHER}"
VIAddVersionKey "FileDescription" "${NAME} installer"
VIAddVersionKey "LegalCopyright" "${PUBLISHER}"

!include "MUI2.nsh"
!include "LogicLib.nsh"
!include "FileFunc.nsh"
!include "Sections.nsh"

!define MUI_ABORTWARNING
!define MUI_COMPONENTSPAGE_SMALLDESC
!define MUI_FINISHPAGE_RUN "$INSTDIR\synctray.exe"
!define MUI_FINISHPAGE_RUN_TEXT "Start ${NAME} now"

!insertmacro MUI_PAGE_WELCOME
!insertmacro MUI_PAGE_COMPONENTS
!insertmacro MUI_PAGE_DIRECTORY
!insertmacro MUI_PAGE_INSTFILES
!insertmacro MUI_PAGE_FINISH

!insertmacro MUI_UNPAGE_CONFIRM
!insertmacro MUI_UNPAGE_COMPONENTS
!insertmacro MUI_UNPAGE_INSTFILES

!insertmacro MUI_LANGUAGE "English"

; Fails the install (exit 2) when the file can not be written: the program
; is running (Windows locks a running .exe). Interactive: asks to quit it.
!macro WaitWritable FILE
  ${Do}
    ClearErrors
    ${IfNot} ${FileExists} "${FILE}"
      ${Break}
    ${EndIf}
    FileOpen $0 "${FILE}" a
    ${IfNot} ${Errors}
      FileClose $0
      ${Break}
    ${EndIf}
    ${If} ${Cmd} `MessageBox MB_RETRYCANCEL|MB_ICONEXCLAMATION "${NAME} is running. Quit it (tray icon, Quit), then click Retry." /SD IDCANCEL IDRETRY`
      ${Continue}
    ${EndIf}
    DetailPrint "${FILE} is in use: ${NAME} is running"
    SetErrorLevel 2
    Abort "${NAME} is running: quit it first"
  ${Loop}
!macroend

Section "${NAME} (required)" SecMain
  SectionIn RO
  SetOutPath "$INSTDIR"
  !insertmacro WaitWritable "$INSTDIR\synctray.exe"
  SetOverwrite on
  File "/oname=synctray.exe" "${EXE}"
  WriteUninstaller "$INSTDIR\uninstall.exe"

  ; Per-user Start menu (the shell context of a user-level installer).
  SetShellVarContext current
  CreateShortcut "$SMPROGRAMS\${NAME}.lnk" "$INSTDIR\synctray.exe" "" "$INSTDIR\synctray.exe" 0

  WriteRegStr HKCU "${UNINST_KEY}" "DisplayName" "${NAME}"
  WriteRegStr HKCU "${UNINST_KEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr HKCU "${UNINST_KEY}" "Publisher" "${PUBLISHER}"
  WriteRegStr HKCU "${UNINST_KEY}" "DisplayIcon" "$INSTDIR\synctray.exe,0"
  WriteRegStr HKCU "${UNINST_KEY}" "InstallLocation" "$INSTDIR"
  WriteRegStr HKCU "${UNINST_KEY}" "UninstallString" '"$INSTDIR\uninstall.exe"'
  WriteRegStr HKCU "${UNINST_KEY}" "QuietUninstallString" '"$INSTDIR\uninstall.exe" /S'
  WriteRegDWORD HKCU "${UNINST_KEY}" "NoModify" 1
  WriteRegDWORD HKCU "${UNINST_KEY}" "NoRepair" 1
  ${GetSize} "$INSTDIR" "/S=0K" $0 $1 $2
  WriteRegDWORD HKCU "${UNINST_KEY}" "EstimatedSize" $0 ; KiB
SectionEnd

Section /o "Start at login" SecAutostart
  WriteRegStr HKCU "${RUN_KEY}" "${NAME}" '"$INSTDIR\synctray.exe"'
SectionEnd

; Not at login: after the install, the Run value exists exactly when the
; component was selected.
Section "-autostart off"
  ${IfNot} ${SectionIsSelected} ${SecAutostart}
    DeleteRegValue HKCU "${RUN_KEY}" "${NAME}"
  ${EndIf}
SectionEnd

Function .onInit
  ; Default: what is there now (a reinstall keeps the tray toggle's choice).
  ReadRegStr $0 HKCU "${RUN_KEY}" "${NAME}"
  ${If} $0 != ""
    !insertmacro SelectSection ${SecAutostart}
  ${EndIf}
  ${GetParameters} $R0
  ClearErrors
  ${GetOptions} $R0 "/AUTOSTART=" $R1
  ${IfNot} ${Errors}
    ${If} $R1 == "1"
      !insertmacro SelectSection ${SecAutostart}
    ${ElseIf} $R1 == "0"
      !insertmacro UnselectSection ${SecAutostart}
    ${Else}
      MessageBox MB_ICONSTOP "/AUTOSTART=$R1: want /AUTOSTART=1 or /AUTOSTART=0" /SD IDOK
      SetErrorLevel 2
      Quit
    ${EndIf}
  ${EndIf}
FunctionEnd

; ---- uninstaller ----

Section "un.${NAME} (required)" UnSecMain
  SectionIn RO
  !insertmacro WaitWritable "$INSTDIR\synctray.exe"
  Delete "$INSTDIR\synctray.exe"
  Delete "$INSTDIR\uninstall.exe"
  RMDir "$INSTDIR" ; only when empty: never a folder with someone else's files
  SetShellVarContext current
  Delete "$SMPROGRAMS\${NAME}.lnk"
  DeleteRegValue HKCU "${RUN_KEY}" "${NAME}"
  DeleteRegKey HKCU "${UNINST_KEY}"
SectionEnd

Section /o "un.Delete my data" UnSecPurge
  SetShellVarContext current
  RMDir /r "$APPDATA\${NAME}"
SectionEnd

!insertmacro MUI_FUNCTION_DESCRIPTION_BEGIN
  !insertmacro MUI_DESCRIPTION_TEXT ${SecMain} "The ${NAME} program, its Start-menu shortcut and its entry in Apps & features."
  !insertmacro MUI_DESCRIPTION_TEXT ${SecAutostart} "Start ${NAME} when you sign in to Windows. The tray menu's Start at login changes it later."
!insertmacro MUI_FUNCTION_DESCRIPTION_END

!insertmacro MUI_UNFUNCTION_DESCRIPTION_BEGIN
  !insertmacro MUI_DESCRIPTION_TEXT ${UnSecMain} "The program, its shortcut, Start at login and its entry in Apps & features."
  !insertmacro MUI_DESCRIPTION_TEXT ${UnSecPurge} "Also delete %AppData%\${NAME}: the outbox (actions not synced yet are lost), the API token, the settings."
!insertmacro MUI_UNFUNCTION_DESCRIPTION_END

Function un.onInit
  ${GetParameters} $R0
  ClearErrors
  ${GetOptions} $R0 "/PURGE=" $R1
  ${IfNot} ${Errors}
    ${If} $R1 == "1"
      !insertmacro SelectSection ${UnSecPurge}
    ${ElseIf} $R1 == "0"
      !insertmacro UnselectSection ${UnSecPurge}
    ${Else}
      MessageBox MB_ICONSTOP "/PURGE=$R1: want /PURGE=1 or /PURGE=0" /SD IDOK
      SetErrorLevel 2
      Quit
    ${EndIf}
  ${EndIf}
FunctionEnd
