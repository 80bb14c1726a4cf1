<#
.SYNOPSIS
  Install the Edge Console operator console @VERSION@ on Windows from this offline kit: no network is used.
.DESCRIPTION
  Checks the kit first (verify_kit.py: the release authority's signature on SHA256SUMS, then every file) and
  refuses a kit that does not verify. Then a virtual environment with edge-console[console] from the kit's
  wheels (pip --no-index) and a Start menu shortcut.

    powershell -ExecutionPolicy Bypass -File install-console.ps1
    powershell -ExecutionPolicy Bypass -File install-console.ps1 -Root D:\root.json -Prefix C:\EdgeConsole

  Needs Python 3.11, 3.12 or 3.13 for Windows x86_64 (python.org's installer; its "py" launcher is used).
#>
param(
  [string]$Prefix = (Join-Path $env:LOCALAPPDATA "EdgeConsole"),
  [string]$Python = "",
  [string]$Root = "",
  [switch]$NoShortcut
)
$ErrorActionPreference = "Stop"
$Version = "@VERSION@"
$Kit = $PSScriptRoot

function Fail([string]$Message) {
  [Console]::Error.WriteLine("install-console: $Message")
  exit 1
}

# A Python 3.11+: the one named, else the newest the py launcher knows, else python.exe on PATH.
if (-not $Python) {
  $launcher = Get-Command py.exe -ErrorAction SilentlyContinue
  foreach ($v in "3.13", "3.12", "3.11") {
    if ($launcher) {
      # Windows PowerShell turns a native program's stderr into errors, which "Stop" would throw: probe quietly.
      try { $found = & py.exe "-$v" -c "import sys; print(sys.executable)" 2>$null } catch { $found = $null }
      if ($LASTEXITCODE -eq 0 -and $found) { $Python = "$found".Trim(); break }
    }
  }
  if (-not $Python) {
    $onPath = Get-Command python.exe -ErrorAction SilentlyContinue
    if ($onPath) { $Python = $onPath.Source }
  }
}
if (-not $Python) { Fail "no Python found: install Python 3.11-3.13 for Windows (x86_64), or pass -Python C:\path\python.exe" }
& $Python -c "import sys; sys.exit(sys.version_info < (3, 11))"
if ($LASTEXITCODE -ne 0) { Fail "$Python is older than 3.11: the console needs Python 3.11, 3.12 or 3.13" }

Write-Host "Checking the kit in $Kit ..."
if ($Root) { & $Python (Join-Path $Kit "verify_kit.py") $Kit --root $Root } else { & $Python (Join-Path $Kit "verify_kit.py") $Kit }
if ($LASTEXITCODE -ne 0) { Fail "the kit does not verify: nothing was installed" }

$check = @'
import json, sys
kit = json.load(open(sys.argv[1]))
here = f"win_amd64 cp{sys.version_info.major}{sys.version_info.minor}"
if here not in kit["console"]:
    sys.exit(f"install-console: this kit has no console wheels for {here}; it has: {', '.join(kit['console'])}")
'@
& $Python -c $check (Join-Path $Kit "KIT.json")
if ($LASTEXITCODE -ne 0) { exit 1 }

$Wheels = Join-Path $Kit "wheels"
$PipWheel = Get-ChildItem -Path $Wheels -Filter "pip-*.whl" | Sort-Object Name | Select-Object -Last 1
if (-not $PipWheel) { Fail "the kit has no pip wheel" }
$Venv = Join-Path $Prefix "venv"
$Previous = ""
if (Test-Path $Venv) {
  $Previous = "$Venv.previous"
  if (Test-Path $Previous) { Remove-Item -Recurse -Force $Previous }
  Move-Item $Venv $Previous
}
function Restore {
  if (Test-Path $Venv) { Remove-Item -Recurse -Force $Venv }
  if ($Previous) { Move-Item $Previous $Venv; [Console]::Error.WriteLine("install-console: the previous installation was kept") }
}

Write-Host "Installing edge-console[console] $Version into $Venv ..."
New-Item -ItemType Directory -Force -Path $Prefix | Out-Null
& $Python -m venv --without-pip $Venv
if ($LASTEXITCODE -ne 0) { Restore; Fail "cannot make a virtual environment in $Venv" }
$VenvPython = Join-Path $Venv "Scripts\python.exe"
& $VenvPython (Join-Path $PipWheel.FullName "pip") --isolated --disable-pip-version-check install --quiet --no-index --find-links $Wheels pip
if ($LASTEXITCODE -ne 0) { Restore; Fail "cannot install pip from the kit" }
& $VenvPython -m pip --isolated --disable-pip-version-check install --quiet --no-index --find-links $Wheels --only-binary=:all: "edge-console[console]==$Version"
if ($LASTEXITCODE -ne 0) { Restore; Fail "pip could not install edge-console[console]==$Version from the kit" }
if ($Previous) { Remove-Item -Recurse -Force $Previous }

$Exe = Join-Path $Venv "Scripts\edge-console.exe"
if (-not $NoShortcut) {
  $Programs = [Environment]::GetFolderPath("Programs")
  $Shell = New-Object -ComObject WScript.Shell
  $Link = $Shell.CreateShortcut((Join-Path $Programs "Edge Console.lnk"))
  $Link.TargetPath = $Exe
  $Link.WorkingDirectory = $Prefix
  $Link.Description = "Find, watch and check edge-AI inference devices on the local network, offline"
  $Link.Save()
}
Write-Host "Installed: $Exe ($Version)"
Write-Host "Try it:    & '$Exe' --demo      # a simulated fleet on 127.0.0.1 only"
