import Foundation
import Stampede
import StampedeRedis

/// What one worker process of the invalidation check saw, audited against the writer's log.
struct InvalidationReport: Codable, Sendable {
    var reads = 0
    var readsAfterInvalidation = 0
    var staleReads = 0
    var staleWindows = StaleWindows()
    var errors = ErrorTally()
    /// Reader tasks that stopped at their share of ``ReadLog/maximumReadsPerProcess``
    /// before the duration was up.
    var readersStoppedEarly = 0
}

/// The reader tasks of one worker process in the invalidation check. Each reads random keys
/// back to back for the duration, noting when each read started and which origin version
/// it got; nothing between reads suspends, so that with the near cache a reader that hits
/// never leaves its thread.
struct InvalidationReaders: Sendable {
    /// Values stay fresh for the whole check: only invalidations replace them.
    static let policy = CachePolicy(timeToLive: .seconds(60), earlyRefreshBeta: nil)

    let cache: StampedeCache
    let keys: Int
    let tasks: Int
    /// When the readers stop (CLOCK_MONOTONIC ns).
    let end: Int
    let seed: UInt64
    /// This worker's place among the check's processes, for its key choices.
    let index: Int
    /// Per key, the loader: it reads the origin's version, then takes `--load-ms`, as a
    /// real origin takes time during which an invalidation can land. Built once, so that a
    /// read allocates no closure.
    private let loaders: [@Sendable () async throws -> Int]
    private let names: [String]

    init(cache: StampedeCache, namespace: String, keys: Int, tasks: Int, load: Duration, end: Int, seed: UInt64, index: Int) {
        self.cache = cache
        self.keys = keys
        self.tasks = tasks
        self.end = end
        self.seed = seed
        self.index = index
        let client = cache.client
        names = (0..<keys).map(ReliabilityKeys.key)
        loaders = names.map { name in
            let origin = RedisArgument(ReliabilityKeys.origin(namespace, key: name))
            return {
                let version = try await client.send("GET", origin).int ?? 0
                try await Task.sleep(for: load)
                return version
            }
        }
    }

    /// Reads until ``end``: each task's reads, the failures, and how many tasks stopped at
    /// their share of the reads a process may record.
    func read() async -> (reads: [ReadLog], errors: ErrorTally, stoppedEarly: Int) {
        await withTaskGroup(of: (ReadLog, ErrorTally, Bool).self) { group in
            for task in 0..<tasks {
                group.addTask { await readLoop(task: task) }
            }
            var logs: [ReadLog] = []
            var errors = ErrorTally()
            var stoppedEarly = 0
            for await (log, taskErrors, stopped) in group {
                logs.append(log)
                errors.merge(taskErrors)
                if stopped { stoppedEarly += 1 }
            }
            return (logs, errors, stoppedEarly)
        }
    }

    private func readLoop(task: Int) async -> (ReadLog, ErrorTally, Bool) {
        var log = ReadLog(keys: keys)
        var errors = ErrorTally()
        var random = StormCallers.keyGenerator(seed: seed, process: index, task: task)
        let limit = ReadLog.maximumReadsPerProcess / tasks
        while true {
            let start = monotonicNanoseconds()
            guard start < end else { return (log, errors, false) }
            guard log.count < limit else { return (log, errors, true) }
            let key = Int(random.next() % UInt64(keys))
            do {
                let version: Int = try await cache.value(for: names[key], load: loaders[key])
                if version >= 0 {
                    log.record(key: key, version: version, startedAt: start)
                } else {
                    errors.record("negative origin version \(version) for \(names[key])")
                }
            } catch {
                errors.record("\(error)")
            }
        }
    }

    /// The reads audited against the writer's log.
    static func report(of reads: [ReadLog], errors: ErrorTally, stoppedEarly: Int,
                       invalidations: [InvalidationAudit.Invalidation], keys: Int) -> InvalidationReport {
        var audit = InvalidationAudit(invalidations: invalidations, keys: keys)
        for log in reads { audit.add(log) }
        return InvalidationReport(
            reads: audit.findings.reads, readsAfterInvalidation: audit.findings.readsAfterInvalidation,
            staleReads: audit.findings.staleReads, staleWindows: audit.findings.staleWindows,
            errors: errors, readersStoppedEarly: stoppedEarly)
    }
}
