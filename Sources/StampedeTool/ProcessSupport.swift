import Foundation

/// CLOCK_MONOTONIC in nanoseconds: one clock for every process on the machine.
func monotonicNanoseconds() -> Int {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return time.tv_sec * 1_000_000_000 + time.tv_nsec
}

/// Whether process `pid` still runs: an exited child not yet reaped (a zombie) counts as gone.
func isRunning(_ pid: pid_t) -> Bool {
    #if os(Linux)
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return false }
    return !stat.contains(") Z ")
    #else
    // Without /proc, a zombie still counts as running.
    return kill(pid, 0) == 0
    #endif
}

/// The median of `values` (the mean of the middle two for an even count); 0 for none.
func median(_ values: [Double]) -> Double {
    guard !values.isEmpty else { return 0 }
    let sorted = values.sorted()
    return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}

/// For a worker process (this executable in a hidden mode, started by a coordinator such as
/// `stampede storm`): stops on SIGINT and SIGTERM, which the coordinator ignores (it handles
/// them itself) and a spawned process inherits ignored; and exits when the coordinator is
/// gone (its process id no longer our parent), so that a coordinator killed outright leaves
/// no worker behind.
func tieLifetimeToCoordinator() {
    signal(SIGINT, SIG_DFL)
    signal(SIGTERM, SIG_DFL)
    let parent = getppid()
    Thread.detachNewThread {
        while getppid() == parent { usleep(200_000) }
        Foundation.exit(2)
    }
}

/// Prints a line and flushes it, so that a parent reading the pipe sees it at once. A
/// closed standard output (`stampede storm | head`) loses the line rather than stopping the
/// process before it has cleaned up.
func say(_ line: String) {
    try? FileHandle.standardOutput.write(contentsOf: Data((line + "\n").utf8))
}

/// CPU time this process has used so far, user and system, every thread: per call, it
/// shows what a storm costs the machine beside its rate, which the other processes on a
/// shared machine move more.
enum ProcessCPU {
    static func seconds() -> Double {
        var usage = rusage()
        #if os(Linux)
        getrusage(RUSAGE_SELF.rawValue, &usage)
        #else
        getrusage(RUSAGE_SELF, &usage)
        #endif
        func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) * 1e-6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }
}
