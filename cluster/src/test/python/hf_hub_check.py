"""The real huggingface_hub on a cache moelora filled, and against moelora's test Hub (FakeHub).

  hf_hub_check.py read REPO REVISION FILE...      (run with HF_HUB_OFFLINE=1 and HF_HUB_CACHE set)
      snapshot_download(local_files_only=True), hf_hub_download of each file, scan_cache_dir:
      prints JSON {"snapshot", "files": {name: [path, sha256]}, "scan": {...}, "warnings": [...]}
  hf_hub_check.py download REPO REVISION          (run with HF_ENDPOINT and HF_HUB_CACHE set)
      snapshot_download of the whole revision through the endpoint, then verify_repo_checksums of
      that cache: prints JSON {"snapshot", "verified", "mismatches", "missing"}
  hf_hub_check.py verify REPO REVISION            (HF_ENDPOINT, HF_HUB_CACHE)
      verify_repo_checksums of the cache as it is (moelora's): every file it holds against the Hub
"""
import hashlib
import json
import os
import sys

import huggingface_hub
from huggingface_hub import HfApi, hf_hub_download, scan_cache_dir, snapshot_download


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


def verification(repo, revision):
    v = HfApi(endpoint=os.environ["HF_ENDPOINT"]).verify_repo_checksums(repo, revision=revision, cache_dir=os.environ["HF_HUB_CACHE"])
    return {"verified": v.checked_count, "mismatches": [m["path"] for m in v.mismatches],
            "missing_locally": sorted(v.missing_paths), "extra_locally": sorted(v.extra_paths)}


def main():
    mode, repo, revision, files = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    out = {"huggingface_hub": huggingface_hub.__version__}
    if mode == "read":
        out["snapshot"] = snapshot_download(repo, revision=revision, local_files_only=True)
        out["files"] = {}
        for f in files:
            p = hf_hub_download(repo, f, revision=revision, local_files_only=True)
            out["files"][f] = [p, sha256(p)]
        info = scan_cache_dir(os.environ["HF_HUB_CACHE"])
        out["warnings"] = [str(w) for w in info.warnings]
        out["scan"] = {r.repo_id: {"refs": sorted(r.refs), "revisions": {rev.commit_hash: sorted(f.file_name for f in rev.files) for rev in r.revisions}}
                       for r in info.repos}
    elif mode == "download":
        out["snapshot"] = snapshot_download(repo, revision=revision)
        out.update(verification(repo, revision))
    elif mode == "verify":
        out.update(verification(repo, revision))
    else:
        raise SystemExit("unknown mode " + mode)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
