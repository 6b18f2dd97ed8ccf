// HTTP adapter: Java 17 HttpURLConnection keep-alive loop, JVM networking defaults untouched.
//
//     java HttpLoop.java --target NAME:PORT --rate R --out FILE --stop-file FILE
//         [--max-duration S] [--slow-file FILE] [--conns 1] [--tls CA_FILE]
//
// GET http://NAME:PORT/java on a fixed schedule. Each body (or error body) is read to the end
// and its stream closed, so the connection goes back to the JVM's keep-alive cache. With --tls,
// https://NAME:PORT/java (HttpsURLConnection, the same keep-alive cache); the JVM trusts the CA
// through its trust store, a keytool-made store holding CA_FILE's certificate named by
// -Djavax.net.ssl.trustStore on the java command line (the adapter refuses to start without
// it). See README.md.

import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStreamWriter;
import java.io.PrintWriter;
import java.net.HttpURLConnection;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

public class HttpLoop {
    static final String CLIENT = "java";
    static final Pattern BACKEND = Pattern.compile("\"backend\"\\s*:\\s*\"([^\"]*)\"");
    static final Pattern PORT = Pattern.compile("\"client_port\"\\s*:\\s*(\\d+)");

    /** Epoch seconds with microseconds, as a JSON number (no exponent). */
    static String now() {
        Instant i = Instant.now();
        return String.format(Locale.ROOT, "%d.%06d", i.getEpochSecond(), i.getNano() / 1000);
    }

    static String q(String s) {
        if (s == null) return "null";
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            if (c == '"' || c == '\\') b.append('\\').append(c);
            else if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
            else b.append(c);
        }
        return b.append('"').toString();
    }

    static void usage(String msg) {
        System.err.println("HttpLoop: " + msg + "\nusage: java HttpLoop.java --target NAME:PORT"
            + " --rate R --out FILE --stop-file FILE [--max-duration S] [--slow-file FILE]"
            + " [--conns 1] [--connection keep-alive|close] [--tls CA_FILE]");
        System.exit(2);
    }

    static String readAll(InputStream in) throws IOException {
        if (in == null) return "";
        try (in) {
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }

    public static void main(String[] argv) throws Exception {
        Map<String, String> a = new HashMap<>();
        a.put("--max-duration", "120");
        a.put("--conns", "1");
        a.put("--connection", "keep-alive");
        for (int i = 0; i < argv.length; i += 2) {
            if (!argv[i].matches("--(target|rate|out|stop-file|max-duration|slow-file|conns|connection|tls)")
                    || i + 1 >= argv.length)
                usage("bad argument " + argv[i]);
            a.put(argv[i], argv[i + 1]);
        }
        for (String k : new String[] {"--target", "--rate", "--out", "--stop-file"})
            if (!a.containsKey(k)) usage("missing " + k);
        double rate = 0, maxDuration = 0;
        try {
            rate = Double.parseDouble(a.get("--rate"));
            maxDuration = Double.parseDouble(a.get("--max-duration"));
        } catch (NumberFormatException e) {
            usage("bad number: " + e.getMessage());
        }
        if (!(rate > 0) || !a.get("--conns").equals("1"))
            usage("--rate must be > 0 and --conns 1");
        if (!a.get("--connection").matches("keep-alive|close"))
            usage("--connection must be keep-alive or close");
        // close: a fresh connection for every request (the failover scenario).
        boolean fresh = a.get("--connection").equals("close");
        // --slow-file is ignored: HTTP slow answers come from the backend.

        boolean tls = a.containsKey("--tls");
        if (tls && System.getProperty("javax.net.ssl.trustStore") == null)
            usage("--tls CA_FILE needs -Djavax.net.ssl.trustStore=<a store holding CA_FILE's"
                + " certificate> on the java command line");
        URL url = new URL((tls ? "https://" : "http://") + a.get("--target") + "/" + CLIENT);
        Path stopFile = Path.of(a.get("--stop-file"));
        PrintWriter out = new PrintWriter(new OutputStreamWriter(
            new FileOutputStream(a.get("--out"), true), StandardCharsets.UTF_8));
        out.println("{\"type\": \"meta\", \"t\": " + now() + ", \"pid\": "
            + ProcessHandle.current().pid() + ", \"client\": " + q(CLIENT) + ", \"version\": "
            + q(System.getProperty("java.version")) + "}");
        out.flush();

        long interval = (long) (1e9 / rate);
        long deadline = System.nanoTime() + (long) (maxDuration * 1e9);
        long next = System.nanoTime();
        for (long seq = 0; ; seq++) {
            // Wait for the slot, watching the stop file and the deadline.
            boolean stop = false;
            while (true) {
                long t = System.nanoTime();
                if (Files.exists(stopFile) || t >= deadline) { stop = true; break; }
                if (t >= next) break;
                Thread.sleep(Math.max(1, Math.min(50, (next - t) / 1_000_000)));
            }
            if (stop) break;

            String t0 = now();
            String backend = null, port = null, error = null;
            HttpURLConnection c = null;
            try {
                c = (HttpURLConnection) url.openConnection();
                c.setConnectTimeout(2000);
                if (fresh)
                    c.setRequestProperty("Connection", "close");
                c.setReadTimeout(5000);
                int code = c.getResponseCode();
                String body = readAll(code >= 400 ? c.getErrorStream() : c.getInputStream());
                Matcher m = BACKEND.matcher(body);
                if (m.find()) backend = m.group(1);
                m = PORT.matcher(body);
                if (m.find()) port = m.group(1);
                if (code != 200) error = "HTTP " + code;
                else if (backend == null) error = "no backend in body: "
                    + body.substring(0, Math.min(200, body.length()));
            } catch (Exception e) {
                error = e.getClass().getSimpleName() + ": " + e.getMessage();
                if (c != null) {
                    try {
                        readAll(c.getErrorStream());
                    } catch (Exception ignored) {
                        // nothing more to drain
                    }
                }
            }
            String t1 = now();
            out.println("{\"type\": \"req\", \"seq\": " + seq + ", \"t\": " + t0 + ", \"t_end\": "
                + t1 + ", \"ok\": " + (error == null) + ", \"backend\": " + q(backend)
                + ", \"client_port\": " + (port == null ? "null" : port)
                + ", \"conn\": 0, \"slow\": false"
                + (error == null ? "" : ", \"error\": " + q(error)) + "}");
            out.flush();
            // Fixed schedule; after a late request the next one waits a full interval (no
            // catch-up burst, and never a request right on the heels of a slow answer).
            next += interval;
            if (next < System.nanoTime()) next = System.nanoTime() + interval;
        }
        out.println("{\"type\": \"end\", \"t\": " + now() + "}");
        out.flush();
        out.close();
        System.exit(0);
    }
}
