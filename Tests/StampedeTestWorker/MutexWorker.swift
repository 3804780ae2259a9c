import ArgumentParser
import Foundation
import Stampede
import StampedeRedis

/// One process of a multi-process lock test.
/// It reports on standard output, one line per event, flushed at once.
struct MutexWorker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mutex-worker",
        abstract: "A lock taken by many tasks, or held and written under with its fencing token."
    )

    enum Mode: String, ExpressibleByArgument {
        /// Increment a counter with a non-atomic GET and SET under the lock.
        case count
        /// Take the lock once, hold it, then write with the lease's fencing token.
        case hold
    }

    @Option var redis: String
    @Option var name: String
    @Option var mode: Mode
    @Option var keyPrefix: String = "stampede:lock:"
    @Option var tasks: Int = 1
    @Option var iterations: Int = 1
    @Option var counter: String = "counter"
    @Option var leaseMs: Int = 10_000
    @Option var holdMs: Int = 0
    @Option var writeKey: String = "fenced"
    @Option var value: String = "worker"

    func run() async throws {
        var configuration = try RedisConfiguration(url: redis)
        configuration.commandTimeout = .milliseconds(500)
        configuration.reconnectBackoff = .init(initial: .milliseconds(10), maximum: .milliseconds(100))
        let client = try RedisClient(configuration: configuration)
        let mutex = RedisMutex(client: client, keyPrefix: keyPrefix)
        say("ready")
        do {
            switch mode {
            case .count: try await count(mutex)
            case .hold: try await hold(mutex)
            }
        } catch let error as StampedeError where error.code == .leaseLost {
            say("lost")
            await client.shutdown()
            throw ExitCode(3)
        }
        await client.shutdown()
    }

    private func count(_ mutex: RedisMutex) async throws {
        let options = LockOptions(leaseDuration: .milliseconds(leaseMs), maximumWait: .seconds(60))
        let client = mutex.client
        let counter = self.counter
        let name = self.name
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<tasks {
                group.addTask {
                    for _ in 0..<iterations {
                        try await mutex.withLock(name, options: options) { _ in
                            // Deliberately not atomic: only the lock keeps updates from being lost.
                            let current = try await client.send("GET", RedisArgument(counter)).int ?? 0
                            try await client.send("SET", RedisArgument(counter), RedisArgument(current + 1))
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        say("done")
    }

    private func hold(_ mutex: RedisMutex) async throws {
        let options = LockOptions(
            leaseDuration: .milliseconds(leaseMs), maximumWait: .seconds(30),
            onLeaseLost: { loss in say("handler \(loss.reason)") })
        let hold = Duration.milliseconds(holdMs)
        let (writeKey, value) = (self.writeKey, self.value)
        try await mutex.withLock(name, options: options) { lease in
            say("acquired \(lease.fence.value)")
            // Sleep through cancellation too, so that a holder that lost its lease still tries
            // its late write, and the fencing token is what stops it.
            let clock = ContinuousClock()
            let until = clock.now + hold
            while clock.now < until { try? await Task.sleep(until: until, clock: clock) }
            let written = try await mutex.setIfFenceIsNewest(Array(value.utf8), at: writeKey, fence: lease.fence)
            say(written ? "write accepted" : "write rejected")
        }
        say("released")
    }
}
