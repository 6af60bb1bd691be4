package dev.moelora.cluster.config;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigException;
import com.typesafe.config.ConfigFactory;
import com.typesafe.config.ConfigParseOptions;
import com.typesafe.config.ConfigRenderOptions;
import com.typesafe.config.ConfigValue;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * A run's configuration: the built-in defaults ({@code moelora-defaults.conf}), under a user's
 * HOCON file, under {@code --set key=value} overrides. Keys the defaults do not know are
 * rejected with their origin, so a typo never silently falls back to a default.
 */
public final class RunConfig {
    private final Config config;

    private RunConfig(Config config) {
        this.config = config;
    }

    public static RunConfig load(Path file, List<String> overrides) {
        Config user = file == null ? ConfigFactory.empty() : parseFile(file);
        user = withOverrides(user, overrides);
        return of(user);
    }

    /** Parses {@code key=value} overrides onto a configuration (later ones win). */
    public static Config withOverrides(Config base, List<String> overrides) {
        Config user = base;
        for (String o : overrides) {
            int eq = o.indexOf('=');
            if (eq <= 0) throw new IllegalArgumentException("--set expects key=value, got '" + o + "'");
            try {
                user = ConfigFactory.parseString(o.substring(0, eq).trim() + " = " + quoteIfNeeded(o.substring(eq + 1).trim()),
                        ConfigParseOptions.defaults().setOriginDescription("--set " + o)).withFallback(user);
            } catch (ConfigException e) {
                throw new IllegalArgumentException("--set " + o + ": " + e.getMessage(), e);
            }
        }
        return user;
    }

    /** A run configuration from user settings over the defaults; unknown keys are an error naming their origin. */
    public static RunConfig of(Config user) {
        Config defaults = defaults();
        for (Map.Entry<String, ConfigValue> e : user.entrySet()) {
            if (!defaults.hasPathOrNull(e.getKey())) {
                throw new IllegalArgumentException("unknown config key '" + e.getKey() + "' (" + e.getValue().origin().description()
                        + "); see moelora-defaults.conf for every key");
            }
        }
        return new RunConfig(user.withFallback(defaults).resolve());
    }

    private static Config defaults() {
        return ConfigFactory.parseResources(RunConfig.class.getClassLoader(), "moelora-defaults.conf",
                ConfigParseOptions.defaults().setAllowMissing(false));
    }

    /** Reads a HOCON file, naming it in any error. */
    public static Config parseFile(Path file) {
        if (!Files.isRegularFile(file)) throw new IllegalArgumentException("config file " + file + " does not exist");
        try {
            return ConfigFactory.parseFile(file.toFile(), ConfigParseOptions.defaults().setAllowMissing(false));
        } catch (ConfigException e) {
            throw new IllegalArgumentException("config file " + file + ": " + e.getMessage(), e);
        }
    }

    /** Values that HOCON would not parse bare (paths with ':' or spaces) are quoted; lists and numbers pass as they are. */
    private static String quoteIfNeeded(String v) {
        if (v.startsWith("[") || v.startsWith("\"") || v.startsWith("{")) return v;
        if (v.matches("[A-Za-z0-9_.+-]*")) return v;
        return "\"" + v.replace("\\", "\\\\").replace("\"", "\\\"") + "\"";
    }

    public String string(String key) { return get(key, config::getString); }
    public int integer(String key) { return get(key, config::getInt); }
    public long longValue(String key) { return get(key, config::getLong); }
    public double number(String key) { return get(key, config::getDouble); }
    public boolean bool(String key) { return get(key, config::getBoolean); }
    public List<String> strings(String key) { return get(key, config::getStringList); }
    public java.time.Duration duration(String key) { return get(key, config::getDuration); }
    public long bytes(String key) { return get(key, config::getBytes); }

    /** This configuration with {@code key} set to {@code value} (a string). */
    public RunConfig with(String key, String value) {
        return new RunConfig(config.withValue(key, com.typesafe.config.ConfigValueFactory.fromAnyRef(value)));
    }

    /** A configuration sent as text by another node (rendered by {@link #render()}), checked as a file would be. */
    public static RunConfig parse(String hocon) {
        return of(com.typesafe.config.ConfigFactory.parseString(hocon));
    }

    private <T> T get(String key, java.util.function.Function<String, T> getter) {
        try {
            return getter.apply(key);
        } catch (ConfigException e) {
            throw new IllegalArgumentException("config key '" + key + "': " + e.getMessage(), e);
        }
    }

    /** The resolved configuration as HOCON, written next to a run's results. */
    public String render() {
        return config.root().render(ConfigRenderOptions.defaults().setOriginComments(false).setJson(false));
    }

    /**
     * Keys that say where and how long a run goes, not what it computes: a saved run may continue
     * with other values (more steps, other checkpoint intervals, another placement, another run
     * directory).
     */
    private static final List<String> NOT_HASHED = List.of("run", "train.steps", "checkpoint", "runtime", "cluster", "recovery", "dashboard");

    /** The settings that decide what a saved adapter means: everything but {@link #NOT_HASHED}. */
    private Config meaning() {
        Config c = config;
        for (String k : NOT_HASHED) c = c.withoutPath(k);
        return c;
    }

    /** A stable hash of the settings that decide what a saved adapter means. */
    public String hash() {
        return Integer.toHexString(meaning().root().render(ConfigRenderOptions.concise()).hashCode());
    }

    /**
     * The keys whose values decide what a saved adapter means and differ between {@code saved}
     * and this configuration, each as "key = saved value -> this value" (absent keys shown as
     * "(absent)"), sorted by key; empty when a run saved with {@code saved} may continue as this one.
     */
    public List<String> differences(RunConfig saved) {
        Config mine = meaning(), theirs = saved.meaning();
        java.util.TreeSet<String> keys = new java.util.TreeSet<>();
        for (Map.Entry<String, ConfigValue> e : mine.entrySet()) keys.add(e.getKey());
        for (Map.Entry<String, ConfigValue> e : theirs.entrySet()) keys.add(e.getKey());
        List<String> out = new java.util.ArrayList<>();
        for (String k : keys) {
            String a = theirs.hasPath(k) ? theirs.getValue(k).render(ConfigRenderOptions.concise()) : "(absent)";
            String b = mine.hasPath(k) ? mine.getValue(k).render(ConfigRenderOptions.concise()) : "(absent)";
            if (!a.equals(b)) out.add(k + " = " + a + " -> " + b);
        }
        return out;
    }
}
