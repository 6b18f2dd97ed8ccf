<?php
// HTTP adapter: PHP 8.2 with php-curl, one curl handle reused for every request.
//
//     php http_php.php --target NAME:PORT --rate R --out FILE --stop-file FILE
//         [--max-duration S] [--connection keep-alive|close] [--slow-file FILE] [--conns 1]
//
// GET http://NAME:PORT/php on a fixed schedule with curl_exec() on one handle made once
// (curl_init), as long-running PHP services and workers do: libcurl keeps the connection in the
// handle's cache and reuses it, and keeps the handle's DNS cache (60 s by default). Options set:
// CURLOPT_TCP_KEEPALIVE (TCP keep-alive probes, as services set it), 2 s connect and 5 s total
// timeouts, no proxy. The rest are libcurl's defaults. php-curl is an extension PHP loads with
// dlopen(RTLD_DEEPBIND), so libcurl's calls (getaddrinfo in its resolver thread, connect, send)
// bind to libc before any preloaded library.
//
// Records: backend from the JSON body, client_port = CURLINFO_LOCAL_PORT, and "num_connects"
// (CURLINFO_NUM_CONNECTS: 1 when the request opened a new connection). A failed transfer's
// "error" is "curl error N: message". --slow-file and --conns (only 1) are accepted and ignored:
// HTTP slow answers come from the backend. See README.md.

const CLIENT = 'php';

function usage(string $msg): void
{
    fwrite(STDERR, "http_php.php: $msg\nusage: php http_php.php --target NAME:PORT --rate R " .
        "--out FILE --stop-file FILE [--max-duration S] [--connection keep-alive|close] " .
        "[--slow-file FILE] [--conns 1]\n");
    exit(2);
}

function parse_args(array $argv): array
{
    $args = ['max-duration' => '120', 'connection' => 'keep-alive', 'conns' => '1'];
    $known = ['target', 'rate', 'out', 'stop-file', 'max-duration', 'slow-file', 'conns',
              'connection'];
    for ($i = 1; $i < count($argv); $i += 2) {
        $k = substr($argv[$i], 0, 2) === '--' ? substr($argv[$i], 2) : null;
        if ($k === null || !in_array($k, $known, true) || $i + 1 >= count($argv)) {
            usage("bad argument {$argv[$i]}");
        }
        $args[$k] = $argv[$i + 1];
    }
    foreach (['target', 'rate', 'out', 'stop-file'] as $k) {
        if (!isset($args[$k])) {
            usage("missing --$k");
        }
    }
    if (!is_numeric($args['rate']) || (float)$args['rate'] <= 0 ||
        !is_numeric($args['max-duration']) || (float)$args['max-duration'] < 0 ||
        $args['conns'] !== '1') {
        usage('--rate must be > 0, --max-duration >= 0 and --conns 1');
    }
    if (!in_array($args['connection'], ['keep-alive', 'close'], true)) {
        usage('--connection must be keep-alive or close');
    }
    if (!preg_match('/^(.+):(\d+)$/', $args['target'])) {
        usage('--target must be NAME:PORT');
    }
    return $args;
}

function main(array $argv): int
{
    $args = parse_args($argv);
    if (!function_exists('curl_init')) {
        fwrite(STDERR, "http_php.php: the curl extension is not loaded (install php-curl)\n");
        return 2;
    }
    $out = fopen($args['out'], 'a');
    if ($out === false) {
        return 2;
    }
    $emit = function (array $rec) use ($out): void {
        fwrite($out, json_encode($rec, JSON_UNESCAPED_SLASHES) . "\n");
        fflush($out);
    };
    $stop = false;
    if (function_exists('pcntl_async_signals')) {
        pcntl_async_signals(true);
        foreach ([SIGTERM, SIGINT] as $sig) {
            pcntl_signal($sig, function () use (&$stop) { $stop = true; });
        }
    }

    $ch = curl_init();
    curl_setopt_array($ch, [
        CURLOPT_URL => 'http://' . $args['target'] . '/' . CLIENT,
        CURLOPT_RETURNTRANSFER => true,
        CURLOPT_CONNECTTIMEOUT_MS => 2000,
        CURLOPT_TIMEOUT_MS => 5000,
        CURLOPT_NOPROXY => '*',
        CURLOPT_TCP_KEEPALIVE => 1,
        CURLOPT_HTTPHEADER => $args['connection'] === 'close' ? ['Connection: close'] : [],
    ]);
    $emit(['type' => 'meta', 't' => microtime(true), 'pid' => getmypid(), 'client' => CLIENT,
           'version' => 'PHP ' . PHP_VERSION . ', libcurl ' . curl_version()['version'],
           'target' => $args['target']]);

    $interval = 1.0 / (float)$args['rate'];
    $mono = fn(): float => hrtime(true) / 1e9;
    $deadline = $mono() + (float)$args['max-duration'];
    $next = $mono();
    for ($seq = 0;; $seq++) {
        for (;;) {
            $t = $mono();
            if ($stop || $t >= $deadline || file_exists($args['stop-file'])) {
                break 2;
            }
            if ($t >= $next) {
                break;
            }
            usleep((int)(min(0.05, $next - $t) * 1e6));
            clearstatcache();
        }
        $next += $interval;
        $rec = ['type' => 'req', 'seq' => $seq, 't' => microtime(true)];
        $body = curl_exec($ch);
        $rec['t_end'] = microtime(true);
        $backend = null;
        $port = null;
        $error = null;
        if ($body === false) {
            $error = sprintf('curl error %d: %s', curl_errno($ch), curl_error($ch));
        } else {
            $data = json_decode($body, true);
            if (is_array($data)) {
                $backend = $data['backend'] ?? null;
                $port = curl_getinfo($ch, CURLINFO_LOCAL_PORT) ?: null;
            } else {
                $error = 'bad body: ' . json_encode(substr($body, 0, 200));
            }
            $code = curl_getinfo($ch, CURLINFO_RESPONSE_CODE);
            if ($code !== 200) {
                $error = "HTTP $code";
            }
        }
        $rec['ok'] = $error === null && $backend !== null;
        $rec += ['backend' => $backend, 'client_port' => $port, 'conn' => 0, 'slow' => false,
                 'num_connects' => curl_getinfo($ch, CURLINFO_NUM_CONNECTS)];
        if (!$rec['ok']) {
            $rec['error'] = $error ?? 'no backend in body';
        }
        $emit($rec);
        // After a late request the next one waits a full interval: no catch-up burst.
        if ($next < $mono()) {
            $next = $mono() + $interval;
        }
    }
    curl_close($ch);
    $emit(['type' => 'end', 't' => microtime(true)]);
    return 0;
}

exit(main($argv));
