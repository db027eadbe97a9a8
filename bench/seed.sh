#!/usr/bin/env bash
# The seed pipeline's way (see the seed's PowerShell step), on Linux: list the repositories with one REST call,
# then ONE AT A TIME: git clone --bare (token in http.extraheader on the command line, as the seed does),
# git lfs fetch --all, zip the bare repository at default compression (Compress-Archive's "Optimal" ≈ zip -6)
# into an archive FILE in a staging folder, upload that file (azcopy's role: storage-blob uploadFile in a small
# node script, one process per archive like one azcopy per archive), then delete the clone and the archive.
# Differences, both to make it do the same work as RepoBackup: disabled repositories are skipped (the seed would
# stop at the first failing clone), and git lfs fetch gets the same auth header as the clone (the seed's
# `git lfs fetch` runs without it).
#
# env: ORG_URL (collection URL, trailing /), TOKEN (job token), SAS_URL (container SAS, sp=cw), WORK (empty folder),
#      UPLOADER (node script: <file> <container SAS URL> <blob name>), BLOB_PREFIX (run folder in the container)
set -euo pipefail
export GIT_TERMINAL_PROMPT=0
clone="$WORK/clone"
staging="$WORK/staging"
mkdir -p "$clone" "$staging"

date=$(date +%Y-%m-%d)
# Invoke-RestMethod's role: one call, the JSON parsed; one "project<TAB>name<TAB>remoteUrl<TAB>isDisabled" line per repository.
list=$(node -e '
  fetch(process.env.ORG_URL + "_apis/git/repositories?api-version=5.0", { headers: { Authorization: "Bearer " + process.env.TOKEN } })
    .then((r) => { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
    .then((j) => { for (const r of j.value) console.log([r.project.name, r.name, r.remoteUrl, r.isDisabled === true].join("\t")); })
    .catch((e) => { console.error("Error getting repo list: " + e.message); process.exit(1); });')

while IFS=$'\t' read -r project name url disabled; do
  echo "**** REPO **** $url"
  if [ "$disabled" = true ]; then echo "skipping disabled repository $project/$name"; continue; fi
  git -c http.extraheader="AUTHORIZATION: bearer $TOKEN" clone --bare --verbose --progress "$url" "$clone" 2>&1
  ( cd "$clone" && git -c http.extraheader="AUTHORIZATION: bearer $TOKEN" lfs fetch --all ) 2>&1
  zipfile="${date}_$(printf '%s' "$project" | sed 's/[^a-zA-Z0-9]/-/g')_$(printf '%s' "$name" | sed 's/[^a-zA-Z0-9]/-/g').zip"
  ( cd "$clone" && zip -r -q "$staging/$zipfile" . )
  node "$UPLOADER" "$staging/$zipfile" "$SAS_URL" "$BLOB_PREFIX$zipfile"
  rm -rf "$clone" && mkdir "$clone"
  rm -rf "${staging:?}"/*
done <<< "$list"
