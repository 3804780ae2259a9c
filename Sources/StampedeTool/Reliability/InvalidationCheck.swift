import Foundation
import Stampede
import StampedeRedis

/// The invalidation check's coordinator: starts the reader processes, runs the writer
/// (change the origin, invalidate, note when the invalidation returned) for the duration,
/// and gathers what the readers saw, audited against the writer's log.
struct InvalidationCheck {
    let processes: Int
    let tasks: Int
    let keys: Int
    let duration: Double
    let loadMs: Int
    let writeIntervalMs: Int
    let nearCache: Bool
    let seed: UInt64
    let namespace: String

    func run(on server: ServerChoice, client: RedisClient) async throws -> InvalidationResult {
        let durationMs = Int(duration * 1000)
        let expiry = ReliabilityKeys.expiryMilliseconds(durationMs: durationMs)
        // Version 0 of every key, with an expiry that INCR keeps.
        for result in try await client.pipeline((0..<keys).map { index in
            ["SET", RedisArgument(ReliabilityKeys.origin(namespace, key: ReliabilityKeys.key(index))), "0", "PX", RedisArgument(expiry)]
        }) {
            _ = try result.get()
        }
        // The URL (which may hold a password) goes by environment, not on a command line.
        let fleet = try WorkerFleet(environment: [StormWorker.urlVariable: server.url], (0..<processes).map { index in
            [
                "reliability-worker", "--check", ReliabilityCheck.invalidation.rawValue, "--namespace", namespace,
                "--keys", "\(keys)", "--tasks", "\(tasks)", "--load-ms", "\(loadMs)", "--duration-ms", "\(durationMs)",
                "--seed", "\(seed)", "--index", "\(index)",
            ] + (nearCache ? ["--near-cache"] : [])
        }) { WorkerMessage<InvalidationReport>(line: $0) }
        defer { fleet.stop() }
        try await fleet.waitUntilReady(within: .seconds(60))

        let cache = StampedeCache(client: client, configuration: .init(namespace: namespace))
        try await cache.prepare()
        let startAt = monotonicNanoseconds() + 100_000_000
        fleet.send(line: ReliabilityOrder.go(startAt: startAt).line)
        let (writes, writeErrors) = try await write(with: cache, from: startAt, until: startAt + durationMs * 1_000_000, expiry: expiry)
        fleet.send(line: ReliabilityOrder.writerDone.line)

        let reports: [InvalidationReport] = try await fleet.results(within: .seconds(120))
        await fleet.finish()
        await cache.shutdown()
        try await Keyspace.delete(matching: "*\(namespace):*", client)
        return InvalidationResult(check: self, writes: writes, writeErrors: writeErrors, reports: reports)
    }

    /// The writer: one write every `--write-interval-ms` from `startAt` until `end`, each
    /// a new origin version of a random key, its invalidation, and the log line that says
    /// when the invalidation returned. Returns the invalidations logged and the failures.
    private func write(with cache: StampedeCache, from startAt: Int, until end: Int, expiry: Int) async throws -> (Int, ErrorTally) {
        let client = cache.client
        let log = RedisArgument(ReliabilityKeys.invalidationLog(namespace))
        var random = SplitMix64(seed: seed ^ 0x7772_6974_6572)
        var errors = ErrorTally()
        var writes = 0
        for round in 0... {
            let due = startAt + round * writeIntervalMs * 1_000_000
            guard due < end else { break }
            let wait = due - monotonicNanoseconds()
            if wait > 0 { try await Task.sleep(for: .nanoseconds(wait)) }
            let index = Int(random.next() % UInt64(keys))
            let key = ReliabilityKeys.key(index)
            do {
                guard let version = try await client.send("INCR", RedisArgument(ReliabilityKeys.origin(namespace, key: key))).int else {
                    throw ToolError("INCR gave no number")
                }
                try await cache.invalidate(key)
                let invalidation = InvalidationAudit.Invalidation(key: index, version: version, returnedAt: monotonicNanoseconds())
                for result in try await client.pipeline([
                    ["RPUSH", log, RedisArgument(invalidation.line)], ["PEXPIRE", log, RedisArgument(expiry)],
                ]) {
                    _ = try result.get()
                }
                writes += 1
            } catch {
                errors.record("\(error)")
            }
        }
        return (writes, errors)
    }
}
