import ArgumentParser

@main
struct Stampede: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stampede",
        abstract: "Stampede's command-line tool: measure the Redis client against your Redis.",
        subcommands: [ClientThroughput.self, CacheBenchmark.self, HitBenchmark.self, MutexBenchmark.self, MutexWorker.self, CacheWorker.self],
        defaultSubcommand: ClientThroughput.self
    )
}
