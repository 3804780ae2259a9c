import Foundation
import Stampede
import StampedeRedis
import Synchronization

/// What one worker process of the outage check saw.
struct OutageReport: Codable, Sendable {
    var reads = 0
    var errors = ErrorTally()
    /// Origin calls before Redis went down, while it was down (from the kill until the
    /// restarted server accepted connections), and after.
    var originCallsBefore = 0
    var originCallsDuring = 0
    var originCallsAfter = 0
    /// The longest read, in nanoseconds.
    var longestReadNs = 0
}

/// The reader tasks of one worker process in the outage check: they read random keys back
/// to back, through Redis going down and coming back, until told to stop; the origin notes
/// when it is called.
final class OutageReaders: Sendable {
    /// Values live one second, so that the outage spans several times to live: with
    /// Redis down, the cache loads locally.
    static let policy = CachePolicy(timeToLive: .seconds(1), earlyRefreshBeta: nil, whenRedisUnavailable: .loadLocally)

    /// Short timeouts, so that a read finds Redis gone quickly and a restarted Redis is
    /// found again quickly.
    static func configure(_ configuration: inout RedisConfiguration) {
        configuration.commandTimeout = .milliseconds(200)
        configuration.connectTimeout = .milliseconds(200)
        configuration.reconnectBackoff = .init(initial: .milliseconds(10), maximum: .milliseconds(100))
    }

    /// The value of a key, as the origin gives it and the readers expect it.
    static func value(of key: String) -> String { "v-\(key)" }

    let cache: StampedeCache
    let keys: Int
    let tasks: Int
    let load: Duration
    let seed: UInt64
    let index: Int
    private let stopped = Atomic(false)
    /// When each origin call started (CLOCK_MONOTONIC ns).
    private let originCalls = Mutex<[Int]>([])

    init(cache: StampedeCache, keys: Int, tasks: Int, load: Duration, seed: UInt64, index: Int) {
        self.cache = cache
        self.keys = keys
        self.tasks = tasks
        self.load = load
        self.seed = seed
        self.index = index
    }

    /// Makes the readers stop after their current read.
    func stop() { stopped.store(true, ordering: .relaxed) }

    /// Reads until ``stop()`` or `deadline` (CLOCK_MONOTONIC ns), whichever comes first:
    /// the reads made and the failed ones.
    func read(until deadline: Int) async -> (reads: Int, errors: ErrorTally, longestNs: Int) {
        await withTaskGroup(of: (Int, ErrorTally, Int).self) { group in
            for task in 0..<tasks {
                group.addTask { await self.readLoop(task: task, deadline: deadline) }
            }
            var reads = 0
            var errors = ErrorTally()
            var longest = 0
            for await (taskReads, taskErrors, taskLongest) in group {
                reads += taskReads
                errors.merge(taskErrors)
                longest = max(longest, taskLongest)
            }
            return (reads, errors, longest)
        }
    }

    private func readLoop(task: Int, deadline: Int) async -> (Int, ErrorTally, Int) {
        var random = StormCallers.keyGenerator(seed: seed, process: index, task: task)
        var reads = 0
        var errors = ErrorTally()
        var longest = 0
        while !stopped.load(ordering: .relaxed) && monotonicNanoseconds() < deadline {
            let key = ReliabilityKeys.key(Int(random.next() % UInt64(keys)))
            reads += 1
            let started = monotonicNanoseconds()
            defer { longest = max(longest, monotonicNanoseconds() - started) }
            do {
                let value: String = try await cache.value(for: key) { [self] in
                    originCalls.withLock { $0.append(monotonicNanoseconds()) }
                    try await Task.sleep(for: load)
                    return Self.value(of: key)
                }
                if value != Self.value(of: key) { errors.record("wrong value for \(key): \(value.prefix(40))") }
            } catch {
                errors.record("\(error)")
            }
        }
        return (reads, errors, longest)
    }

    /// The report, with the origin calls counted around the outage (or failover) from
    /// `downAt` to `upAt`.
    func report(reads: Int, errors: ErrorTally, longestNs: Int, downAt: Int, upAt: Int) -> OutageReport {
        var report = OutageReport(reads: reads, errors: errors, longestReadNs: longestNs)
        for call in originCalls.withLock({ $0 }) {
            if call < downAt {
                report.originCallsBefore += 1
            } else if call <= upAt {
                report.originCallsDuring += 1
            } else {
                report.originCallsAfter += 1
            }
        }
        return report
    }
}
