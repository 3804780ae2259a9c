import ArgumentParser
import Foundation
import Stampede
import StampedeRedis

/// One process of a multi-process semaphore test: many tasks taking permits and counting,
/// in Redis, how many hold one at once; or one permit held, then written under.
struct SemaphoreWorker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "semaphore-worker")

    enum Mode: String, ExpressibleByArgument {
        /// Tasks take permits over and over; each counts the holders and any excess.
        case count
        /// Take one permit, say so, hold it, then write with its fencing token.
        case hold
    }

    @Option var redis: String
    @Option var name: String
    @Option var mode: Mode
    @Option var keyPrefix: String
    @Option var permits: Int
    @Option var tasks: Int = 1
    @Option var iterations: Int = 1
    @Option var leaseMs: Int = 10_000
    @Option var holdMs: Int = 0
    @Option var writeKey: String = "fenced"

    func run() async throws {
        var configuration = try RedisConfiguration(url: redis)
        configuration.commandTimeout = .seconds(2)
        let client = try RedisClient(configuration: configuration)
        let semaphore = RedisSemaphore(client: client, keyPrefix: keyPrefix, permits: permits)
        say("ready")
        let (holding, excess, total) = (keyPrefix + "holding", keyPrefix + "excess", keyPrefix + "total")
        switch mode {
        case .count:
            let options = LockOptions(leaseDuration: .milliseconds(leaseMs), maximumWait: .seconds(120))
            let (permits, iterations) = (self.permits, self.iterations)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<tasks {
                    group.addTask {
                        for _ in 0..<iterations {
                            try await semaphore.withPermit(self.name, options: options) { _ in
                                let now = try await client.send("INCR", RedisArgument(holding)).int ?? 0
                                if now > permits { try await client.send("INCR", RedisArgument(excess)) }
                                try await client.send("INCR", RedisArgument(total))
                                try await client.send("DECR", RedisArgument(holding))
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }
            say("done")
        case .hold:
            let mutex = RedisMutex(client: client, keyPrefix: keyPrefix)
            let hold = Duration.milliseconds(holdMs)
            let writeKey = self.writeKey
            do {
                try await semaphore.withPermit(name, options: .init(leaseDuration: .milliseconds(leaseMs))) { permit in
                    say("acquired \(permit.fence.value)")
                    try? await Task.sleep(for: hold)
                    let written = try await mutex.setIfFenceIsNewest(Array("late".utf8), at: writeKey, fence: permit.fence)
                    say(written ? "write accepted" : "write rejected")
                }
                say("released")
            } catch let error as StampedeError where error.code == .leaseLost {
                say("lost")
                throw ExitCode(3)
            }
        }
        await client.shutdown()
    }
}
