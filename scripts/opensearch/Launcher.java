package dev.panthera.testing;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.apache.logging.log4j.LogManager;
import org.opensearch.analysis.common.CommonAnalysisPlugin;
import org.opensearch.common.settings.Settings;
import org.opensearch.env.Environment;
import org.opensearch.index.mapper.MapperExtrasPlugin;
import org.opensearch.index.reindex.ReindexPlugin;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;
import org.opensearch.painless.PainlessPlugin;
import org.opensearch.transport.Netty4Plugin;

/**
 * One OpenSearch node for the test suite, run from the Maven Central jars (scripts/opensearch.sh).
 *
 * <p>The distribution's own bootstrap wants its directory layout (modules/, plugins/, bin/) and
 * installs a security manager; the jars alone have neither. Node's protected constructor takes
 * the plugin classes directly instead, the way OpenSearch's own integration tests start nodes.
 * With no bootstrap there are no bootstrap checks and no security plugin: plain HTTP on loopback.
 *
 * <p>Arguments are settings, {@code key=value} (what {@code -E} is to the opensearch command);
 * path.home, path.data, http.port and transport.port are required. Logging goes to the console
 * (log4j2.properties beside this class), the script sends it to a file.
 */
public final class Launcher {
    /** The distribution's modules the tests need, by their real class names in the jars. */
    static final List<Class<? extends org.opensearch.plugins.Plugin>> PLUGINS = List.of(
        Netty4Plugin.class,           // HTTP and transport (transport-netty4-client)
        CommonAnalysisPlugin.class,   // english analyzer, stemmers, asciifolding (analysis-common)
        MapperExtrasPlugin.class,     // search_as_you_type, scaled_float (mapper-extras-client)
        PainlessPlugin.class,         // painless scripts (lang-painless)
        ReindexPlugin.class           // _reindex, _update_by_query (reindex-client)
    );

    public static void main(String[] args) throws Exception {
        Settings.Builder settings = Settings.builder()
            .put("cluster.name", "panthera-test")
            .put("node.name", "panthera-test")
            // One node that elects itself: no discovery, no bootstrap of a cluster.
            .put("discovery.type", "single-node")
            .put("network.host", "127.0.0.1")
            .put("http.type", "netty4")
            .put("transport.type", "netty4")
            // A full disk on a developer machine must not turn the indices read-only mid-test.
            .put("cluster.routing.allocation.disk.threshold_enabled", false);
        for (String arg : args) {
            int eq = arg.indexOf('=');
            if (eq <= 0) {
                throw new IllegalArgumentException("expected key=value, got " + arg);
            }
            settings.put(arg.substring(0, eq), arg.substring(eq + 1));
        }
        for (String key : List.of("path.home", "path.data", "http.port", "transport.port")) {
            if (settings.get(key) == null) {
                throw new IllegalArgumentException("missing setting " + key + "=...");
            }
        }
        Path home = Path.of(settings.get("path.home"));
        if (settings.get("path.logs") == null) {
            settings.put("path.logs", home.resolve("logs").toString());
        }
        Path config = Files.createDirectories(home.resolve("config"));
        Files.createDirectories(Path.of(settings.get("path.data")));
        Files.createDirectories(Path.of(settings.get("path.logs")));

        Environment environment = InternalSettingsPreparer.prepareEnvironment(
            settings.build(), Map.of(), config, () -> "panthera-test");
        // OpenSearch's threads are all daemons: without this latch the JVM would end with main.
        CountDownLatch closed = new CountDownLatch(1);
        try {
            Node node = new Node(environment, PLUGINS, true) {};
            Runtime.getRuntime().addShutdownHook(new Thread(() -> {
                try {
                    node.close();
                    node.awaitClose(10, TimeUnit.SECONDS);
                } catch (Exception e) {
                    e.printStackTrace();
                } finally {
                    closed.countDown();
                    // -Dlog4j.shutdownHookEnabled=false keeps log4j up for the node's last lines.
                    LogManager.shutdown();
                }
            }, "panthera-opensearch-shutdown"));
            node.start();
        } catch (Throwable t) {
            // A port taken, a locked data dir: say so and end (the hook closes what started)
            // rather than hang half started.
            t.printStackTrace();
            System.exit(1);
        }
        closed.await();
    }
}
