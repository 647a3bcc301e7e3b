#!/usr/bin/env python3
"""What each execution costs PostgreSQL: the statements wasmflow sends per
execution of a trivial action, counted by `pg_stat_statements`.

One `serve --workers SLOTS` on a private cluster (as in workers.py, with
`pg_stat_statements` preloaded); N POST /api/v1/executions of add.wasm from
ab after a warm-up; then per statement: calls per execution, rows per
call, statement time per execution; and per table, the sequential scans
and the rows they read.

  bench/pg_statements.py WASMFLOW [N]     (SLOTS=2 by default)

ANALYZE=1 analyzes every table after the warm-up, with the queue emptied
(what autovacuum does on an idle system), so the measured load runs on
plans made for an idle queue.
"""
import os
import shutil
import subprocess
import sys

import workers


def main():
    wasmflow = os.path.abspath(sys.argv[1])
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 3000
    work, _ = workers.workspace("wf-bench-pgstat-")
    cluster = workers.Cluster(work)
    try:
        with open(os.path.join(cluster.data, "postgresql.conf"), "a") as f:
            f.write("shared_preload_libraries = 'pg_stat_statements'\n"
                    "pg_stat_statements.track = all\n")
        cluster.pg("pg_ctl", "-D", cluster.data, "-l", os.path.join(cluster.dir, "log"), "-w",
                   "-m", "fast", "restart")
        url = cluster.database()
        psql = [os.path.join(cluster.bin, "psql"), "-h", "127.0.0.1", "-p", str(cluster.port),
                "-U", "wasmflow", "-d", url.rsplit("/", 1)[1], "-qc"]
        subprocess.run(psql + ["CREATE EXTENSION pg_stat_statements"], check=True)
        site = workers.Site(wasmflow, work, "home", url)
        try:
            site.serve(workers.SLOTS)
            workers.load(site, 200, work)
            if os.environ.get("ANALYZE"):
                subprocess.run(psql + ["ANALYZE"], check=True)
            subprocess.run(psql + ["SELECT pg_stat_statements_reset()"], check=True,
                           capture_output=True)
            r = workers.load(site, n, work)
        finally:
            site.stop()
        print(f"{n} executions, {r['per_s']:.0f}/s, {workers.SLOTS} slots")
        out = subprocess.run(psql[:-1] + ["-c", f"""
            SELECT round(calls::numeric / {n}, 3) AS per_execution,
                   round(rows::numeric / greatest(calls, 1), 2) AS rows_per_call,
                   round(total_exec_time::numeric / {n}, 3) AS ms_per_execution,
                   left(regexp_replace(query, '\\s+', ' ', 'g'), 90) AS statement
            FROM pg_stat_statements WHERE query NOT LIKE '%pg_stat_statements%'
            ORDER BY calls DESC LIMIT 12"""], check=True, capture_output=True, text=True)
        print(out.stdout)
        # Sequential scans show a plan that reads a whole table per call
        # (how the end statement's scan of every event was found).
        out = subprocess.run(psql[:-1] + ["-c", """
            SELECT relname AS table_, seq_scan, seq_tup_read, idx_scan, n_live_tup, n_dead_tup
            FROM pg_stat_user_tables WHERE seq_scan + coalesce(idx_scan, 0) > 10
            ORDER BY seq_tup_read DESC"""], check=True, capture_output=True, text=True)
        print(out.stdout)
    finally:
        cluster.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
