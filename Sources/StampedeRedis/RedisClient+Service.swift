import ServiceLifecycle

extension RedisClient: Service {
    /// Runs the client as a service of a `ServiceGroup`: connects at start (a `PING`, so that
    /// a wrong address or password fails the group at once), serves until the group shuts
    /// down gracefully (or the task is cancelled), then closes every connection. Add it
    /// before the caches and locks that use it: a group stops its services in reverse
    /// order, so theirs finish first.
    public func run() async throws {
        try await send("PING")
        try? await gracefulShutdown()
        await shutdown()
    }
}
