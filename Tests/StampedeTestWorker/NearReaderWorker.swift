import ArgumentParser
import Foundation
import Stampede
import StampedeRedis

/// A cache with a near cache that keeps values for a minute, reading one key on command:
/// each line `read N` on standard input prints `read N VALUE`; `exit` ends it. Only a
/// message from another process can make it see a new value within the minute.
struct NearReaderWorker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "near-reader")

    @Option var redis: String
    @Option var namespace: String
    @Option var key: String

    func run() async throws {
        let client = try RedisClient(configuration: try RedisConfiguration(url: redis))
        let cache = StampedeCache(client: client, configuration: .init(
            namespace: namespace, policy: .init(timeToLive: .seconds(600), earlyRefreshBeta: nil),
            nearCache: .init(timeToLive: .seconds(60))))
        try await cache.prepare()
        say("ready")
        while let line = readLine() {
            guard line.hasPrefix("read ") else { break }
            let value: String = try await cache.value(for: key) { "loaded by the reader" }
            say("\(line) \(value)")
        }
        await cache.shutdown()
        await client.shutdown()
    }
}
