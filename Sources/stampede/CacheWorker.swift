import ArgumentParser
import Foundation
import Stampede
import StampedeRedis
import Synchronization

/// One process of a multi-process cache test or storm: the same executable in worker mode.
/// The origin is simulated: it counts its calls in Redis (so they add up across processes)
/// and sleeps.
struct CacheWorker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cache-worker",
        abstract: "Worker process for multi-process cache tests (not for direct use).",
        shouldDisplay: false
    )

    @Option var redis: String
    @Option var namespace: String
    @Option var keys: Int = 1
    @Option var tasks: Int = 1
    @Option var loadMs: Int = 100
    @Option var leaseMs: Int = 10_000
    @Option var waitMs: Int = 5_000
    @Option var ttlMs: Int = 60_000
    @Option var staleMs: Int = 0
    @Option(help: "Redis key counting origin calls.") var originCounter: String
    @Option(help: "Value the origin returns (the key is appended).") var value: String = "value"
    @Option(help: "Value the callers expect (the key is appended). Default: --value.") var expect: String?
    @Option(help: "How the lookups are protected.") var strategy: Strategy = .stampede
    @Option(help: "Start at this CLOCK_MONOTONIC time (ns), so that every process starts at one instant.") var startAt: Int?
    @Flag(help: "Print every caller's latency in microseconds.") var reportLatencies = false

    func run() async throws {
        var configuration = try RedisConfiguration(url: redis)
        configuration.commandTimeout = .seconds(2)
        configuration.reconnectBackoff = .init(initial: .milliseconds(10), maximum: .milliseconds(100))
        let client = try RedisClient(configuration: configuration)
        let policy = CachePolicy(
            timeToLive: .milliseconds(ttlMs), staleWhileRevalidate: .milliseconds(staleMs),
            earlyRefreshBeta: nil, leaseDuration: .milliseconds(leaseMs), waitTimeout: .milliseconds(waitMs))
        let cache = StampedeCache(client: client, configuration: .init(namespace: namespace, policy: policy))
        let (counter, load, value) = (RedisArgument(originCounter), Duration.milliseconds(loadMs), self.value)
        let expected = expect ?? value
        say("ready")
        let clock = ContinuousClock()
        let originCalls = OriginCalls()
        let origin: @Sendable (String) async throws -> String = { key in
            let start = clock.now
            try await client.send("INCR", counter)
            say("loading \(key)")
            try await Task.sleep(for: load)
            originCalls.add(took: clock.now - start)
            return "\(value)-\(key)"
        }
        let lookup = Strategy.Lookup(strategy: strategy, client: client, cache: cache, namespace: namespace, ttlMs: ttlMs)
        if let startAt {
            // Warm, as a running service would be: connections open, scripts loaded,
            // subscription up. What that sends is not part of the storm's count.
            try await client.send("PING")
            if strategy == .stampede { try await cache.prepare() }
            let wait = startAt - monotonicNanoseconds()
            if wait > 0 { try await Task.sleep(for: .nanoseconds(wait)) }
        }
        let commandsBefore = client.commandsSent
        let results = await withTaskGroup(of: (String, Duration).self) { group in
            for index in 0..<tasks {
                let key = "k\(index % keys)"
                group.addTask {
                    let start = clock.now
                    do {
                        let got = try await lookup.value(for: key) { try await origin(key) }
                        return (got == "\(expected)-\(key)" ? "ok" : "wrong \(got)", clock.now - start)
                    } catch {
                        return ("error \(error)", clock.now - start)
                    }
                }
            }
            return await group.reduce(into: [(String, Duration)]()) { $0.append($1) }
        }
        // Round trips this process sent, less the simulated origin's own INCRs.
        say("commands \(client.commandsSent - commandsBefore - originCalls.count)")
        say("origin-us " + originCalls.durations.map { String(Int($0.inMilliseconds * 1000)) }.joined(separator: ","))
        if reportLatencies {
            say("latencies-us " + results.map { String(Int($0.1.inMilliseconds * 1000)) }.joined(separator: ","))
        }
        let failures = results.map(\.0).filter { $0 != "ok" }
        say("ok \(results.count - failures.count)")
        say("max-ms \(Int(results.map(\.1).max()!.inMilliseconds))")
        for failure in Set(failures) { say(failure) }
        await cache.shutdown()
        await client.shutdown()
        if !failures.isEmpty { throw ExitCode(1) }
    }
}

/// The simulated origin's calls in this process and how long each took.
final class OriginCalls: Sendable {
    private let calls = Mutex<[Duration]>([])
    func add(took duration: Duration) { calls.withLock { $0.append(duration) } }
    var count: Int { calls.withLock { $0.count } }
    var durations: [Duration] { calls.withLock { $0 } }
}
