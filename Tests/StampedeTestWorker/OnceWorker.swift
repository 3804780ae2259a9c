import ArgumentParser
import Foundation
import Stampede
import StampedeRedis

/// One process of the duplicate-submission test: many tasks submit the same key at once and
/// wait for its result; the body counts its runs in Redis. Prints `result VALUE` per task.
struct OnceWorker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "once-worker")

    @Option var redis: String
    @Option var keyPrefix: String
    @Option var key: String
    @Option var tasks: Int

    func run() async throws {
        let client = try RedisClient(configuration: try RedisConfiguration(url: redis))
        let submissions = SubmissionGuard(client: client, keyPrefix: keyPrefix, window: .seconds(60))
        let (runs, pid) = (keyPrefix + "runs", ProcessInfo.processInfo.processIdentifier)
        say("ready")
        _ = readLine()
        let results = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<tasks {
                group.addTask {
                    try await submissions.once(self.key, whileRunning: .wait(upTo: .seconds(30))) {
                        try await client.send("INCR", RedisArgument(runs))
                        try await Task.sleep(for: .milliseconds(300))
                        return "receipt from \(pid)"
                    }
                }
            }
            return try await group.reduce(into: [String]()) { $0.append($1) }
        }
        for result in results { say("result \(result)") }
        await client.shutdown()
    }
}
