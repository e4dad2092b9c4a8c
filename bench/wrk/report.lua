-- Print one line of JSON after a wrk run, so that run_bench.py need not parse wrk's
-- text output. Times are in microseconds, as wrk measures them.
function done(summary, latency, requests)
   local errors = summary.errors
   io.write(string.format(
      'BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,' ..
      '"latency_mean_us":%.1f,"latency_p50_us":%d,"latency_p90_us":%d,' ..
      '"latency_p99_us":%d,"latency_max_us":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}\n',
      summary.requests, summary.duration, summary.bytes,
      latency.mean, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency.max,
      errors.connect, errors.read, errors.write, errors.status, errors.timeout))
end
