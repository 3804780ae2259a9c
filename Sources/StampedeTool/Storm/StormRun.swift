import Foundation
import Stampede
import StampedeRedis

/// What every run of one `stampede storm` shares.
struct StormParameters: Sendable {
    var processes: Int
    var tasks: Int
    /// `nil`: each scenario's default (``Scenario/keys(given:)``).
    var keys: Int?
    var loadMs: Int
    /// Seconds that the looping scenarios run.
    var duration: Double
    var holdMs: Int
    var seed: UInt64
    /// This storm's name in its keys, so that storms sharing a Redis keep apart.
    var run: String

    func keys(for scenario: Scenario) -> Int { scenario.keys(given: keys) }
}

/// One (scenario, strategy, repeat): pre-fill, start the workers, release them at one
/// instant, read their reports and Redis's counters, delete the run's keys.
struct StormRun {
    let parameters: StormParameters
    let scenario: Scenario
    let strategy: Strategy
    let `repeat`: Int
    let url: String
    let client: RedisClient
    let progress: Progress

    var namespace: String { StormKeys.namespace(run: parameters.run, scenario: scenario, strategy: strategy, repeat: `repeat`) }

    func run() async throws -> RunReport {
        let keys = parameters.keys(for: scenario)
        defer { progress.clear() }
        progress.show("\(scenario.rawValue) / \(strategy.rawValue): filling \(keys) key\(keys == 1 ? "" : "s")")
        try await prefill(keys: keys)
        let expiry = StormKeys.expiryMilliseconds(durationMs: Int(parameters.duration * 1000), loadMs: parameters.loadMs)
        try await sendAll(StormKeys.counters(namespace).map { ["SET", RedisArgument($0), "0", "PX", RedisArgument(expiry)] })

        progress.show("\(scenario.rawValue) / \(strategy.rawValue): starting \(parameters.processes) workers")
        // The URL (which may hold a password) goes by environment, not on a command line.
        let fleet = try WorkerFleet(environment: [StormWorker.urlVariable: url], (0..<parameters.processes).map { index in
            [
                "storm-worker", "--scenario", scenario.rawValue, "--strategy", strategy.rawValue,
                "--namespace", namespace, "--keys", "\(keys)", "--tasks", "\(parameters.tasks)",
                "--load-ms", "\(parameters.loadMs)", "--duration-ms", "\(Int(parameters.duration * 1000))",
                "--hold-ms", "\(parameters.holdMs)", "--seed", "\(parameters.seed)", "--index", "\(index)",
            ]
        })
        defer { fleet.stop() }
        try await fleet.waitUntilReady(within: .seconds(60))

        // Redis counts every command it runs; the storm's own are taken away below.
        let before = try await Keyspace.commandsProcessed(client)
        let busBefore = try await Keyspace.clusterBusPublishMessages(client)
        let startAt = monotonicNanoseconds() + 100_000_000
        fleet.send(.go(startAt: startAt))
        let expected = scenario.isWave ? Double(parameters.loadMs) / 1000 : parameters.duration
        let ticker = Task {
            while !Task.isCancelled {
                let elapsed = Double(monotonicNanoseconds() - startAt) / 1e9
                progress.show(String(format: "%@ / %@: %.1f s of about %.1f s", scenario.rawValue, strategy.rawValue, max(0, elapsed), expected))
                try? await Task.sleep(for: .milliseconds(250))
            }
        }
        defer { ticker.cancel() }
        let policy = StormPolicy.workers(scenario: scenario, loadMs: parameters.loadMs)
        let reports = try await fleet.results(within: .seconds(expected + 60) + policy.waitTimeout)
        ticker.cancel()
        let after = try await Keyspace.commandsProcessed(client)
        let busAfter = try await Keyspace.clusterBusPublishMessages(client)
        let originCalls = try await client.send("GET", RedisArgument(StormKeys.originCounter(namespace))).int ?? 0
        await fleet.finish()
        try await Keyspace.delete(matching: "*\(namespace):*", client)

        // Less the first counts' own commands on each server (Redis counts a command once it
        // has run: the first INFO, and in a cluster the first CLUSTER INFO) and the workers'
        // bookkeeping (the origin's counter, the lock scenario's checks).
        let ownCommands = busBefore == nil ? 1 : 2
        let perServer = after.reduce(into: [String: Int]()) { counts, entry in
            counts[entry.key] = max(0, entry.value - (before[entry.key] ?? entry.value) - ownCommands)
        }
        let bookkeeping = reports.reduce(0) { $0 + $1.bookkeepingCommands }
        var report = RunReport(
            parameters: parameters, scenario: scenario, strategy: strategy, repeat: `repeat`, workers: reports,
            originCalls: originCalls, redisCommands: max(0, perServer.values.reduce(0, +) - bookkeeping))
        if let busBefore, let busAfter {
            report.commandsPerNode = perServer
            report.clusterBusPublishMessages = busAfter - busBefore
        }
        return report
    }

    /// Values the scenario starts from: none (miss), stale ones, or fresh ones.
    private func prefill(keys: Int) async throws {
        let value: (String) -> String
        let asideExpiryMs: Int
        let policy: CachePolicy
        switch scenario {
        case .miss, .lock: return
        case .stale:
            (value, asideExpiryMs, policy) = (StormValues.stale, 20, StormPolicy.staleFill)
        case .hit, .hotHit:
            (value, asideExpiryMs, policy) = (StormValues.fresh, StormPolicy.asideTimeToLiveMs, StormPolicy.workers(scenario: scenario, loadMs: parameters.loadMs))
        }
        let names = (0..<keys).map { "k\($0)" }
        if strategy == .stampede {
            let cache = StampedeCache(client: client, configuration: .init(namespace: namespace, policy: policy))
            for batch in stride(from: 0, to: names.count, by: 256) {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for name in names[batch..<min(names.count, batch + 256)] {
                        let filled = Array(value(name).utf8)
                        group.addTask { _ = try await cache.value(for: name) { filled } }
                    }
                    try await group.waitForAll()
                }
            }
            await cache.shutdown()
        } else {
            for batch in stride(from: 0, to: names.count, by: 256) {
                let commands = names[batch..<min(names.count, batch + 256)].map { name -> [RedisArgument] in
                    ["SET", RedisArgument(StormKeys.aside(namespace, name)), RedisArgument(value(name)), "PX", RedisArgument(asideExpiryMs)]
                }
                try await sendAll(commands)
            }
        }
        // Stale: let the values pass their time to live (cache-aside's expire outright).
        if scenario == .stale { try await Task.sleep(for: .milliseconds(60)) }
    }

    /// Sends `commands` side by side (the client pipelines them on its connections; in a
    /// cluster each goes to the node of its key).
    private func sendAll(_ commands: [[RedisArgument]]) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for command in commands { group.addTask { try await client.send(command) } }
            try await group.waitForAll()
        }
    }
}
