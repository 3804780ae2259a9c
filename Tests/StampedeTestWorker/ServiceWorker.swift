import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import Stampede
import StampedeRedis

/// A client and a cache in a `ServiceGroup` that stops on SIGTERM, with a background
/// refresh running: prints `refreshing` when its loader starts, `loaded` when it ends, and
/// `stopped` when the group has stopped.
struct ServiceWorker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "service")

    @Option var redis: String
    @Option var namespace: String
    @Option(help: "How long the refresh's loader takes.") var loadMs: Int
    @Option(help: "The cache's shutdown deadline.") var deadlineMs: Int

    func run() async throws {
        let client = try RedisClient(configuration: try RedisConfiguration(url: redis))
        var configuration = StampedeCache.Configuration(
            namespace: namespace, policy: .init(timeToLive: .seconds(60), staleWhileRevalidate: .seconds(60), earlyRefreshBeta: nil))
        configuration.shutdownDeadline = .milliseconds(deadlineMs)
        let cache = StampedeCache(client: client, configuration: configuration)
        let group = ServiceGroup(services: [client, cache], gracefulShutdownSignals: [.sigterm], logger: Logger(label: "worker"))
        let running = Task { try await group.run() }

        // Fresh for 50 ms only: the lookup below finds it stale. The refresh stores for a minute.
        try await cache.set("v1", for: "report", policy: .init(timeToLive: .milliseconds(50), staleWhileRevalidate: .seconds(60), earlyRefreshBeta: nil))
        try await Task.sleep(for: .milliseconds(100))
        let load = Duration.milliseconds(loadMs)
        // Stale now: served at once, refreshed in the background.
        let served: String = try await cache.value(for: "report") {
            say("refreshing")
            try await Task.sleep(for: load)
            say("loaded")
            return "v2"
        }
        say("served \(served)")
        try await running.value
        say("stopped")
    }
}
