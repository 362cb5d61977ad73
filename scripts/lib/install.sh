# Sourced by scripts/demo and scripts/test: make ./.venv hold ctctsync with the given extras,
# at the versions pinned in constraints.txt. Skips pip entirely when pyproject.toml,
# constraints.txt and the extras are unchanged since the last install (the package is
# installed editable, so source changes need no reinstall).
# Usage: install_ctctsync EXTRAS   (e.g. "server" or "dev")
install_ctctsync() {
  local extras=$1 python=${PYTHON:-python3} stamp=.venv/.ctctsync-install digest
  if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
  fi
  digest=$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)
  digest="$digest $extras"
  if [ -f "$stamp" ] && grep -qxF "$digest" "$stamp"; then
    return 0
  fi
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -c constraints.txt -e ".[$extras]"
  # dev includes every other extra: remember each as installed
  echo "$digest" >> "$stamp"
  if [ "$extras" = dev ]; then
    echo "${digest% *} server" >> "$stamp"
  fi
}
