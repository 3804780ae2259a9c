import ArgumentParser

@main
struct Stampede: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stampede",
        abstract: "Stampede's command-line tool: storms and benchmarks against your Redis, or a throwaway one.",
        subcommands: [Storm.self, CacheBenchmark.self, HitBenchmark.self, MutexBenchmark.self, ClientThroughput.self, MutexWorker.self, CacheWorker.self, StormWorker.self],
        defaultSubcommand: Storm.self
    )
}
