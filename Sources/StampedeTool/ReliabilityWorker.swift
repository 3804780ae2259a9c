import ArgumentParser
import Foundation
import Stampede
import StampedeRedis

/// One process of `stampede reliability`: the same executable in worker mode, driven through
/// ``WorkerMessage`` and ``ReliabilityOrder``. Its readers run in a process of
/// their own, as a service's would, apart from the writer and from Redis's restarts.
struct ReliabilityWorker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reliability-worker",
        abstract: "Worker process of `stampede reliability` (not for direct use).",
        shouldDisplay: false
    )

    @Option(help: "Redis URL. Default: $\(StormWorker.urlVariable), which is how `stampede reliability` passes it (a password on a command line is visible to every user of the machine).")
    var redis: String?
    @Option var check: ReliabilityCheck
    @Option(help: "The cache's namespace; every key this worker touches starts with it.") var namespace: String
    @Option var keys: Int
    @Option var tasks: Int
    @Option var loadMs: Int
    @Option(help: "Invalidation check: how long the readers read. Outage check: how long they read at most, unless stopped sooner.")
    var durationMs: Int
    @Flag(help: "Invalidation check: an in-process near cache in front of Redis.") var nearCache = false
    @Option var seed: UInt64
    @Option(help: "This worker's number, for its random key choices.") var index: Int

    /// How long a worker waits for the coordinator's next word before giving up.
    private static let patience = Duration.seconds(120)

    func run() async throws {
        tieLifetimeToCoordinator()
        let coordinator = LineInbox<ReliabilityOrder>(reading: .standardInput) { ReliabilityOrder(line: $0) }
        guard let url = redis ?? ProcessInfo.processInfo.environment[StormWorker.urlVariable] else {
            throw ValidationError("no Redis URL: pass --redis or set \(StormWorker.urlVariable)")
        }
        var configuration = try RedisConfiguration(url: url)
        configuration.reconnectBackoff = .init(initial: .milliseconds(10), maximum: .milliseconds(200))
        if check != .invalidation { OutageReaders.configure(&configuration) }
        let client = try RedisClient(configuration: configuration)
        switch check {
        case .invalidation: try await checkInvalidation(client: client, coordinator: coordinator)
        case .outage, .failover, .sentinelFailover: try await checkOutage(client: client, coordinator: coordinator)
        }
        await client.shutdown()
    }

    private func checkInvalidation(client: RedisClient, coordinator: LineInbox<ReliabilityOrder>) async throws {
        let cache = StampedeCache(client: client, configuration: .init(
            namespace: namespace, policy: InvalidationReaders.policy,
            nearCache: nearCache ? .init(timeToLive: .milliseconds(200)) : nil))
        // Scripts loaded and the subscription up (the near cache keeps values only while it is).
        try await cache.prepare()
        say(WorkerMessage<InvalidationReport>.ready.line)

        let startAt = try await start(coordinator)
        let readers = InvalidationReaders(
            cache: cache, namespace: namespace, keys: keys, tasks: tasks, load: .milliseconds(loadMs),
            end: startAt + durationMs * 1_000_000, seed: seed, index: index)
        let (reads, errors, stoppedEarly) = await readers.read()

        // The writer stops when the readers do; its last invalidation may still be returning.
        guard await coordinator.next(within: .seconds(10)) == .writerDone else {
            throw ToolError("the coordinator did not say the writer was done within 10 s")
        }
        let lines = try await client.send("LRANGE", RedisArgument(ReliabilityKeys.invalidationLog(namespace)), "0", "-1").array ?? []
        let invalidations = try lines.map { line in
            guard let text = line.string, let invalidation = InvalidationAudit.Invalidation(line: text) else {
                throw ToolError("unreadable line in the invalidation log: \(line)")
            }
            return invalidation
        }
        let report = InvalidationReaders.report(of: reads, errors: errors, stoppedEarly: stoppedEarly, invalidations: invalidations, keys: keys)
        say(WorkerMessage.result(report).line)

        _ = await coordinator.next(within: Self.patience)
        await cache.shutdown()
    }

    private func checkOutage(client: RedisClient, coordinator: LineInbox<ReliabilityOrder>) async throws {
        let cache = StampedeCache(client: client, configuration: .init(namespace: namespace, policy: OutageReaders.policy))
        try await cache.prepare()
        say(WorkerMessage<OutageReport>.ready.line)

        let startAt = try await start(coordinator)
        let readers = OutageReaders(cache: cache, keys: keys, tasks: tasks, load: .milliseconds(loadMs), seed: seed, index: index)
        // The coordinator says when to stop; the readers stop by themselves well after it
        // should have (a restart that is slow to come up takes at most 10 s).
        let stop = Task { () -> ReliabilityOrder? in
            let order = await coordinator.next(within: .milliseconds(durationMs) + .seconds(30))
            readers.stop()
            return order
        }
        let (reads, errors, longest) = await readers.read(until: startAt + (durationMs + 20_000) * 1_000_000)
        guard case .stop(let downAt, let upAt)? = await stop.value else {
            throw ToolError("the coordinator did not say when Redis was down")
        }
        say(WorkerMessage.result(readers.report(reads: reads, errors: errors, longestNs: longest, downAt: downAt, upAt: upAt)).line)

        _ = await coordinator.next(within: Self.patience)
        await cache.shutdown()
    }

    /// Waits for the start instant: the coordinator's `go`, then the time it names.
    private func start(_ coordinator: LineInbox<ReliabilityOrder>) async throws -> Int {
        guard case .go(let startAt)? = await coordinator.next(within: Self.patience) else { throw ExitCode(2) }
        let wait = startAt - monotonicNanoseconds()
        if wait > 0 { try await Task.sleep(for: .nanoseconds(wait)) }
        return startAt
    }
}
