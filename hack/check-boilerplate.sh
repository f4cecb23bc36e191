#!/usr/bin/env bash
# hack/check-boilerplate.sh [--list] [FILE...]: every Go file starts with the
# licence header of hack/boilerplate.go.txt (the one controller-gen writes into
# generated files), any year; a //go:build line may come before it, as
# controller-gen puts it. Without FILEs it checks every Go file git knows
# (tracked, or new and not ignored). It names the files without the header
# and fails; hack/add-boilerplate.sh adds it. --list prints only their names
# and succeeds (for hack/add-boilerplate.sh).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
boilerplate=hack/boilerplate.go.txt

list=false
if [[ "${1:-}" == --list ]]; then
	list=true
	shift
fi

# The year does not matter: a file keeps the year it was written in.
any_year() { sed -E 's/^Copyright [0-9]{4} /Copyright YYYY /'; }
want=$(any_year <"$boilerplate")
lines=$(wc -l <"$boilerplate")

# head_of FILE: its first lines after a leading //go:build line and the
# blank lines after it, as many as the header has.
head_of() {
	sed -e '1{/^\/\/go:build /d;}' "$1" | sed -e '/./,$!d' | head -n "$lines" | any_year
}

files=()
if [[ $# -gt 0 ]]; then
	files=("$@")
else
	while IFS= read -r -d '' f; do
		[[ -f "$f" ]] && files+=("$f") # not one deleted in the work tree
	done < <(git ls-files -z --cached --others --exclude-standard -- '*.go')
fi

missing=()
for f in "${files[@]}"; do
	[[ "$(head_of "$f")" == "$want" ]] || missing+=("$f")
done

if $list; then
	[[ ${#missing[@]} -eq 0 ]] || printf '%s\n' "${missing[@]}"
	exit 0
fi
if [[ ${#missing[@]} -gt 0 ]]; then
	echo "check-boilerplate.sh: ${#missing[@]} of ${#files[@]} Go files do not start with the licence header of $boilerplate (hack/add-boilerplate.sh adds it):" >&2
	printf '  %s\n' "${missing[@]}" >&2
	exit 1
fi
echo "check-boilerplate.sh: all ${#files[@]} Go files carry the licence header"
