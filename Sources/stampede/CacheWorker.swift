import ArgumentParser
import Foundation
import Stampede
import StampedeRedis

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
        say("ready")
        let results = await withTaskGroup(of: String.self) { group in
            for index in 0..<tasks {
                let key = "k\(index % keys)"
                group.addTask {
                    do {
                        let got: String = try await cache.value(for: key) {
                            try await client.send("INCR", counter)
                            say("loading \(key)")
                            try await Task.sleep(for: load)
                            return "\(value)-\(key)"
                        }
                        return got == "\(value)-\(key)" ? "ok" : "wrong \(got)"
                    } catch {
                        return "error \(error)"
                    }
                }
            }
            return await group.reduce(into: [String]()) { $0.append($1) }
        }
        let failures = results.filter { $0 != "ok" }
        say("ok \(results.count - failures.count)")
        for failure in Set(failures) { say(failure) }
        await cache.shutdown()
        await client.shutdown()
        if !failures.isEmpty { throw ExitCode(1) }
    }
}
