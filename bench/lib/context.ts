/** What every part of the bench gets, and what it gives back. */
import { readFileSync } from "node:fs";

export interface Ctx {
  /** Temp root on the real disk (data dirs). */
  tmp: string;
  /** tmpfs dir (rendered env files). */
  shm: string;
  logDir: string;
  profDir: string;
  /** Shorter runs, for trying the bench out; figures are not for the record. */
  quick: boolean;
  /** Profile secretsd when a target fails. */
  profile: boolean;
  log(msg: string): void;
}

export interface Target {
  figure: string;
  value: string;
  baseline: string;
  ratio: string;
  target: string;
  ok: boolean;
}

export interface Section {
  title: string;
  body: string;
  targets: Target[];
}

/** utime+stime of a process in ms (from /proc/<pid>/stat, clock ticks of 10 ms). */
export function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // fields[0] is the state (field 3); utime and stime are fields 14 and 15.
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** Busy and total CPU time of the whole machine so far, ms (from /proc/stat, all CPUs). */
export function hostCpuMs(): { busy: number; total: number } {
  const line = readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "";
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  return { busy: (total - idle) * 10, total: total * 10 };
}
