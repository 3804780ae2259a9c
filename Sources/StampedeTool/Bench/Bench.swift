import ArgumentParser

/// The rates a user measures against their own Redis (or a throwaway one), each beside
/// `redis-benchmark` on the same server where that compares.
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Rates against your Redis: cache hits and the near cache, the client's GETs, an uncontended lock, TLS beside plain TCP, semaphores and the submission guard.",
        subcommands: [HitBenchmark.self, ClientThroughput.self, MutexBenchmark.self, TLSBenchmark.self, SemaphoreBenchmark.self]
    )
}
