#!/usr/bin/env bash
# hack/add-boilerplate.sh [FILE...]: puts the licence header of
# hack/boilerplate.go.txt, and a blank line, at the top of every Go file that
# hack/check-boilerplate.sh finds without it (or of the FILEs named, when
# they lack it): after a leading //go:build line and its blank line, where
# controller-gen puts it, since a build constraint may follow only line
# comments. Files that have it are left as they are.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
boilerplate=hack/boilerplate.go.txt

n=0
while IFS= read -r f; do
	tmp=$(mktemp "$f.XXXXXX")
	if [[ "$(head -n 1 "$f")" == //go:build\ * ]]; then
		{
			head -n 1 "$f"
			echo
			cat "$boilerplate"
			echo
			tail -n +2 "$f" | sed -e '/./,$!d'
		} >"$tmp"
	else
		{
			cat "$boilerplate"
			echo
			cat "$f"
		} >"$tmp"
	fi
	chmod --reference="$f" "$tmp"
	mv "$tmp" "$f"
	echo "$f"
	n=$((n + 1))
done < <(hack/check-boilerplate.sh --list "$@")
echo "add-boilerplate.sh: added the header to $n files" >&2
hack/check-boilerplate.sh
