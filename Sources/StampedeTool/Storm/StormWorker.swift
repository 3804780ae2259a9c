import ArgumentParser
import Foundation
import Stampede
import StampedeRedis
import Synchronization

/// One process of a storm: the same executable in worker mode, driven by `stampede storm`
/// through ``WorkerMessage`` and ``CoordinatorMessage``. The origin is simulated: it counts
/// its calls in Redis (so they add up across processes) and sleeps `--load-ms`.
struct StormWorker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "storm-worker",
        abstract: "Worker process of `stampede storm` (not for direct use).",
        shouldDisplay: false
    )

    @Option(help: "Redis URL. Default: $\(Self.urlVariable), which is how `stampede storm` passes it (a password on a command line is visible to every user of the machine).")
    var redis: String?
    static let urlVariable = "STAMPEDE_REDIS_URL"
    @Option var scenario: Scenario
    @Option var strategy: Strategy
    @Option(help: "Every key this worker touches starts with it.") var namespace: String
    @Option var keys: Int
    @Option var tasks: Int
    @Option var loadMs: Int
    @Option var durationMs: Int
    @Option var holdMs: Int
    @Option var seed: UInt64
    @Option(help: "This worker's number, for its random key sequence.") var index: Int

    func run() async throws {
        tieLifetimeToCoordinator()
        let coordinator = LineInbox<CoordinatorMessage>(reading: .standardInput) { CoordinatorMessage(line: $0) }
        guard let url = redis ?? ProcessInfo.processInfo.environment[Self.urlVariable] else {
            throw ValidationError("no Redis URL: pass --redis or set \(Self.urlVariable)")
        }
        var configuration = try RedisConfiguration(url: url)
        configuration.reconnectBackoff = .init(initial: .milliseconds(10), maximum: .milliseconds(200))
        let client = try RedisClient(configuration: configuration)
        let storm = StormCallers(worker: self, client: client)

        // Warm, as a running service would be: connection open, scripts loaded, subscription
        // up. What that sends happens before the coordinator starts counting.
        try await client.send("PING")
        if strategy == .stampede && scenario != .lock { try await storm.cache.prepare() }
        say(WorkerMessage<WorkerReport>.ready.line)

        guard case .go(let startAt)? = await coordinator.next(within: .seconds(600)) else { throw ExitCode(2) }
        let wait = startAt - monotonicNanoseconds()
        if wait > 0 { try await Task.sleep(for: .nanoseconds(wait)) }

        let commandsBefore = client.commandsSent
        var report = await storm.run(startAt: startAt)
        // Background refreshes (stale-while-revalidate) are part of the storm: wait for them.
        await storm.cache.shutdown()
        report.clientCommands = client.commandsSent - commandsBefore - report.bookkeepingCommands
        say(WorkerMessage.result(report).line)

        _ = await coordinator.next(within: .seconds(600))
        await client.shutdown()
    }
}

/// The callers of one worker process and what they measure.
struct StormCallers: Sendable {
    let scenario: Scenario
    let strategy: Strategy
    let namespace: String
    let keys: Int
    let tasks: Int
    let load: Duration
    let duration: Duration
    let hold: Duration
    let seed: UInt64
    /// This worker's place among the storm's processes.
    let index: Int
    let client: RedisClient
    let cache: StampedeCache
    let lookup: Strategy.Lookup
    let mutex: RedisMutex
    let localLock = LocalLock()
    let originCounter: RedisArgument
    /// The simulated origin's calls in this process: bookkeeping, not the cache's commands.
    let originCalls = SharedCount()

    init(worker: StormWorker, client: RedisClient) {
        scenario = worker.scenario
        strategy = worker.strategy
        namespace = worker.namespace
        keys = worker.keys
        tasks = worker.tasks
        load = .milliseconds(worker.loadMs)
        duration = .milliseconds(worker.durationMs)
        hold = .milliseconds(worker.holdMs)
        seed = worker.seed
        index = worker.index
        self.client = client
        cache = StampedeCache(client: client, configuration: .init(namespace: namespace, policy: StormPolicy.workers(scenario: scenario, loadMs: worker.loadMs)))
        lookup = Strategy.Lookup(strategy: strategy, client: client, cache: cache, namespace: namespace, ttlMs: StormPolicy.asideTimeToLiveMs)
        mutex = RedisMutex(client: client, keyPrefix: namespace + ":")
        originCounter = RedisArgument(StormKeys.originCounter(namespace))
    }

    /// The key picker of one task of one process: the same for the same `--seed`, unrelated
    /// between tasks and processes. Seeds one SplitMix64 step apart would give one sequence
    /// shifted by a draw, so the triple is mixed through a generator of its own first.
    static func keyGenerator(seed: UInt64, process: Int, task: Int) -> SplitMix64 {
        var mixer = SplitMix64(seed: seed ^ (UInt64(process) << 32 | UInt64(task)))
        return SplitMix64(seed: mixer.next())
    }

    func run(startAt: Int) async -> WorkerReport {
        let clock = ContinuousClock()
        let end = clock.now + duration
        var report = await withTaskGroup(of: WorkerReport.self) { group in
            for task in 0..<tasks {
                group.addTask {
                    var report = WorkerReport()
                    if scenario == .lock {
                        await lockLoop(until: end, into: &report)
                    } else if scenario.isWave {
                        await call(key: "k\(task % keys)", into: &report)
                    } else {
                        var random = Self.keyGenerator(seed: seed, process: index, task: task)
                        repeat {
                            let key = scenario == .hotHit ? "k0" : "k\(random.next() % UInt64(keys))"
                            await call(key: key, into: &report)
                        } while clock.now < end
                    }
                    return report
                }
            }
            return await group.reduce(into: WorkerReport()) { $0.merge($1) }
        }
        report.wallMilliseconds = Double(monotonicNanoseconds() - startAt) / 1e6
        report.bookkeepingCommands += originCalls.value
        return report
    }

    /// One lookup: its latency, and whether its value is the origin's, the stale one, or wrong.
    private func call(key: String, into report: inout WorkerReport) async {
        let clock = ContinuousClock()
        let start = clock.now
        let (client, counter, load, calls) = (self.client, originCounter, self.load, originCalls)
        let origin: @Sendable () async throws -> String = {
            calls.add()
            try await client.send("INCR", counter)
            try await Task.sleep(for: load)
            return StormValues.fresh(key)
        }
        do {
            let value = try await lookup.value(for: key, origin: origin)
            report.latency.record(clock.now - start)
            report.requests += 1
            if value == StormValues.stale(key) {
                report.staleServed += 1
            } else if value != StormValues.fresh(key) {
                report.record(failure: "wrong value for \(key): \(value.prefix(40))")
            }
        } catch {
            report.latency.record(clock.now - start)
            report.requests += 1
            report.record(error)
        }
    }
}

extension WorkerReport {
    mutating func record(_ error: any Error) {
        if let error = error as? StampedeError, error.code == .waitTimedOut || error.code == .loaderTimedOut
            || error.underlying?.code == .timeout {
            timeouts += 1
        } else if let error = error as? RedisError, error.code == .timeout {
            timeouts += 1
        } else {
            record(failure: "\(error)")
        }
    }

    mutating func record(failure: String) {
        errors += 1
        if errorSamples.count < 3 && !errorSamples.contains(failure) { errorSamples.append(failure) }
    }
}

/// A count that tasks add to concurrently (origin calls, bookkeeping commands).
final class SharedCount: Sendable {
    private let count = Atomic(0)
    func add() { count.add(1, ordering: .relaxed) }
    var value: Int { count.load(ordering: .relaxed) }
}

/// The values a storm's origin and pre-fill write, so that a caller can tell which it got.
enum StormValues {
    static func fresh(_ key: String) -> String { "value-\(key)" }
    static func stale(_ key: String) -> String { "stale-\(key)" }
}

