package dev.moelora.cluster.hub;

import java.util.regex.Pattern;

/**
 * A model named on the Hub, {@code hf:ORG/NAME[@REVISION]}: the repository id and a branch, tag
 * or commit hash (default {@code main}). Checked as huggingface_hub checks repo ids, so a name
 * never turns into a path outside the cache.
 */
public record ModelName(String repo, String revision) {
    public static final String PREFIX = "hf:";
    private static final Pattern REPO = Pattern.compile("[A-Za-z0-9][\\w.-]*/[\\w.-]*[A-Za-z0-9_]");
    private static final Pattern COMMIT = Pattern.compile("[0-9a-f]{40}");

    public static boolean isHub(String spec) {
        return spec.startsWith(PREFIX);
    }

    public static ModelName parse(String spec) {
        if (!isHub(spec)) throw new IllegalArgumentException("'" + spec + "' is not a Hub model name (hf:ORG/NAME[@REVISION])");
        String s = spec.substring(PREFIX.length());
        int at = s.indexOf('@');
        String repo = at < 0 ? s : s.substring(0, at), revision = at < 0 ? "main" : s.substring(at + 1);
        if (!REPO.matcher(repo).matches() || repo.contains("--") || repo.contains("..")) {
            throw new IllegalArgumentException("'" + spec + "': the repository must be ORG/NAME (letters, digits, '-', '_', '.'; no '--' or '..'), e.g. hf:HuggingFaceTB/SmolLM2-135M");
        }
        if (revision.isEmpty() || revision.startsWith("/") || revision.endsWith("/") || revision.contains("..") || revision.contains("\\")
                || revision.chars().anyMatch(c -> c < 0x21 || c == 0x7f)) {
            throw new IllegalArgumentException("'" + spec + "': '" + revision + "' is not a revision (a branch, a tag or a commit hash after '@')");
        }
        return new ModelName(repo, revision);
    }

    /** Whether the revision is a full commit hash: immutable, so never written to refs/. */
    public boolean pinned() {
        return COMMIT.matcher(revision).matches();
    }

    /** The cache folder, as huggingface_hub's repo_folder_name: models--ORG--NAME. */
    public String folder() {
        return "models--" + repo.replace("/", "--");
    }

    @Override
    public String toString() {
        return PREFIX + repo + "@" + revision;
    }
}
