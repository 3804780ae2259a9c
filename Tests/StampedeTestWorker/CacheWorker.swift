import ArgumentParser
import Foundation
import Stampede
import StampedeRedis
import Synchronization

/// One process of a multi-process cache test.
/// The origin is simulated: it counts its calls in Redis (so they add up across processes)
/// and sleeps.
struct CacheWorker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cache-worker",
        abstract: "A cache used by many tasks, with an origin that counts its calls in Redis."
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
        let origin: @Sendable (String) async throws -> String = { key in
            try await client.send("INCR", counter)
            say("loading \(key)")
            try await Task.sleep(for: load)
            return "\(value)-\(key)"
        }
        let clock = ContinuousClock()
        let results = await withTaskGroup(of: (String, Duration).self) { group in
            for index in 0..<tasks {
                let key = "k\(index % keys)"
                group.addTask {
                    let start = clock.now
                    do {
                        let got: String = try await cache.value(for: key) { try await origin(key) }
                        return (got == "\(expected)-\(key)" ? "ok" : "wrong \(got)", clock.now - start)
                    } catch {
                        return ("error \(error)", clock.now - start)
                    }
                }
            }
            return await group.reduce(into: [(String, Duration)]()) { $0.append($1) }
        }
        let failures = results.map(\.0).filter { $0 != "ok" }
        say("ok \(results.count - failures.count)")
        say("max-ms \(results.map(\.1).max()?.wholeMilliseconds ?? 0)")
        for failure in Set(failures) { say(failure) }
        await cache.shutdown()
        await client.shutdown()
        if !failures.isEmpty { throw ExitCode(1) }
    }
}
