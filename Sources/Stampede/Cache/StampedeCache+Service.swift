import ServiceLifecycle

extension StampedeCache: Service {
    /// Runs the cache as a service of a `ServiceGroup`: prepares it at start (connections,
    /// scripts, the subscription), serves until the group shuts down gracefully (or the task
    /// is cancelled), then lets background refreshes finish for at most
    /// ``Configuration/shutdownDeadline`` and ends its subscription
    /// (``shutdown(within:)``).
    public func run() async throws {
        try await prepare()
        try? await gracefulShutdown()
        await shutdown(within: configuration.shutdownDeadline)
    }
}
