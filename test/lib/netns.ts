// Network namespaces for the lab, and their removal: on close, at process exit, on a
// signal, and for namespaces left behind by a test process that died.
//
// Everything here is synchronous so it can run from process.on('exit').
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const IP = '/usr/sbin/ip';
export const ETC_NETNS = '/etc/netns';

function ip(...args: string[]): string {
  return execFileSync(IP, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** A namespace with only lo up (127.0.0.0/8 and ::1). `ip netns exec` bind-mounts
 * /etc/netns/<name>/{resolv.conf,hosts} over /etc's for the processes it starts: the
 * resolver asks our zone server, and hosts has no entry but localhost, so reverse
 * lookups go to DNS. The machine's /etc/resolv.conf is never touched. */
export function createNamespace(name: string): void {
  ip('netns', 'add', name);
  ip('-n', name, 'link', 'set', 'lo', 'up');
  // smtpd 6.8 listens with a backlog of 5. With SYN cookies (the default) a burst of
  // connections overflows it into handshakes the client thinks complete and the server
  // never saw: those sessions wait for a banner forever. Without cookies the kernel
  // drops the SYN and the client retries 1 s later. This sysctl is per namespace.
  ip('netns', 'exec', name, '/usr/sbin/sysctl', '-q', '-w', 'net.ipv4.tcp_syncookies=0');
  const etc = join(ETC_NETNS, name);
  // Another lab's removeNamespace may rmdir an empty /etc/netns between our two mkdirs.
  for (let i = 0; ; i++) {
    try {
      mkdirSync(etc, { recursive: true });
      break;
    } catch (e) {
      if (i > 5) throw e;
    }
  }
  writeFileSync(join(etc, 'resolv.conf'), 'nameserver 127.0.0.1\n');
  writeFileSync(join(etc, 'hosts'), '127.0.0.1\tlocalhost\n');
}

export function namespacePids(name: string): number[] {
  try {
    return ip('netns', 'pids', name).split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

export function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'latin1').replace(/\0/g, ' ').trim();
  } catch {
    return '?';
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** SIGKILL these pids and wait (up to 2 s) until the namespace has none left. */
export function killPids(name: string, pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
  for (let i = 0; i < 40 && pids.length && namespacePids(name).some((p) => pids.includes(p)); i++) sleepSync(50);
}

/** End every process still in the namespace, delete it and its /etc/netns dir.
 * Returns the command lines of the processes that had to be killed. */
export function removeNamespace(name: string): string[] {
  const left = namespacePids(name);
  const described = left.map((p) => `${p} ${cmdline(p)}`);
  killPids(name, left);
  try {
    ip('netns', 'del', name);
  } catch {
    // not there (never created, or removed already)
  }
  rmSync(join(ETC_NETNS, name), { recursive: true, force: true });
  try {
    rmdirSync(ETC_NETNS); // only when empty: other labs may be using it
  } catch {
    // not empty, or absent
  }
  return described;
}

/** State, parent, group and session of a process, from /proc/<pid>/stat
 * ("pid (comm) state ppid pgrp session …"; comm may hold spaces and parentheses). */
export function procStat(pid: number): { state: string; ppid: number; pgrp: number; session: number } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const [state, ppid, pgrp, session] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: state!, ppid: Number(ppid), pgrp: Number(pgrp), session: Number(session) };
  } catch {
    return null;
  }
}

/** A zombie is dead too: an owner killed with its children may be left unreaped (here,
 * pid 1 of a container need not reap). */
export function pidAlive(pid: number): boolean {
  const st = procStat(pid);
  return st !== null && st.state !== 'Z';
}

/** The processes of the namespace that descend from pid. */
export function descendants(name: string, pid: number): number[] {
  const parent = new Map(namespacePids(name).map((p) => [p, procStat(p)?.ppid ?? -1]));
  const tree = new Set([pid]);
  for (let grew = true; grew;) {
    grew = false;
    for (const [p, pp] of parent) {
      if (!tree.has(p) && tree.has(pp)) {
        tree.add(p);
        grew = true;
      }
    }
  }
  tree.delete(pid);
  return [...tree];
}

/** Remove namespaces, /etc/netns dirs and work dirs named <prefix>-<pid>-<n> whose
 * owner pid is dead (a test process that was killed before it could clean up). */
export function sweepStale(prefix: string): string[] {
  const re = new RegExp(`^${prefix.replace(/[^\w-]/g, '\\$&')}-(\\d+)-\\d+`);
  const stale = (n: string) => {
    const m = re.exec(n);
    return m !== null && !pidAlive(Number(m[1]));
  };
  const removed: string[] = [];
  let names: string[] = [];
  try {
    names = ip('netns', 'list').split('\n').map((l) => l.split(' ')[0]!).filter(Boolean);
  } catch {
    // no ip netns support: nothing to sweep
  }
  const dirs = (d: string) => {
    try {
      return readdirSync(d);
    } catch {
      return [];
    }
  };
  for (const n of new Set([...names, ...dirs(ETC_NETNS)])) {
    if (stale(n)) {
      removeNamespace(n);
      removed.push(n);
    }
  }
  for (const d of dirs(tmpdir())) {
    if (stale(d)) rmSync(join(tmpdir(), d), { recursive: true, force: true });
  }
  return removed;
}

const exitHooks = new Set<() => void>();
let installed = false;

/** Run fn (synchronously) if the process exits or is signalled before it is removed. */
export function onProcessExit(fn: () => void): () => void {
  if (!installed) {
    installed = true;
    const runAll = () => {
      for (const h of [...exitHooks]) {
        try {
          h();
        } catch {
          // best effort: keep cleaning the others
        }
      }
      exitHooks.clear();
    };
    process.on('exit', runAll);
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      const onSignal = () => {
        runAll();
        // Then die of the signal as we would have without us. Other listeners (tap's
        // signal-exit) do not exit while we listen, deferring to us: leave, and signal
        // again once they have had their turn.
        process.off(sig, onSignal);
        if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
        else setTimeout(() => process.kill(process.pid, sig), 100).unref();
      };
      process.on(sig, onSignal);
    }
  }
  exitHooks.add(fn);
  return () => exitHooks.delete(fn);
}
