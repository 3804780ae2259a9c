import Logging
import NIOCore
import Synchronization

/// The I/O shell of a client under Sentinel: asks the Sentinels where the master is (before
/// every connect of the client's connections), listens for `+switch-master` on one of them,
/// and asks again every ``RedisConfiguration/Sentinel/recheckInterval`` in case a message was
/// missed. When the master moves, it tells the client, whose connections to the old one then
/// close and reconnect to the new one. ``SentinelState`` decides what a reply or a message
/// means.
final class SentinelMonitor: Sendable {
    private let sentinel: RedisConfiguration.Sentinel
    private let logger: Logger
    /// A connection per Sentinel, opened on first use.
    private let connections: [RedisConnection]
    /// The `+switch-master` subscription, on each Sentinel in turn after a failure.
    private let subscriber: RedisSubscriber
    private let state: Mutex<SentinelState>
    private let onMasterChange: @Sendable (RedisConfiguration.Endpoint) -> Void
    private let watchers = Mutex<(started: Bool, tasks: [Task<Void, Never>])>((false, []))

    init(
        configuration: RedisConfiguration, eventLoop: any EventLoop, logger: Logger,
        onMasterChange: @escaping @Sendable (RedisConfiguration.Endpoint) -> Void
    ) {
        let sentinel = configuration.sentinel!
        self.sentinel = sentinel
        self.logger = logger
        self.onMasterChange = onMasterChange
        state = Mutex(SentinelState(masterName: sentinel.masterName))
        connections = sentinel.nodes.map {
            RedisConnection(configuration: configuration.sentinelNode($0), eventLoop: eventLoop, logger: logger)
        }
        subscriber = RedisSubscriber(
            configuration: configuration.sentinelNode(sentinel.nodes[0]), eventLoop: eventLoop, logger: logger,
            endpoints: sentinel.nodes)
    }

    /// Asks the Sentinels in turn where the master is; the first that names it answers.
    ///
    /// - Throws: ``RedisError/Code/connectionRefused`` when none does.
    func masterAddress() async throws(RedisError) -> RedisConfiguration.Endpoint {
        startWatching()
        var heard: [String] = []
        for (node, connection) in zip(sentinel.nodes, connections) {
            do {
                let reply = try await connection.send(["SENTINEL", "GET-MASTER-ADDR-BY-NAME", RedisArgument(sentinel.masterName)])
                if let master = SentinelState.masterAddress(in: reply) {
                    if let moved = state.withLock({ $0.named(master) }) { onMasterChange(moved) }
                    return master
                }
                heard.append("\(node): no master named '\(sentinel.masterName)'")
            } catch let error as RedisError {
                heard.append("\(node): \(error.code)")
            } catch {
                heard.append("\(node): \(error)")
            }
        }
        throw RedisError(.connectionRefused, "no Sentinel named the master '\(sentinel.masterName)' (\(heard.joined(separator: "; ")))")
    }

    /// The master as last named.
    var master: RedisConfiguration.Endpoint? { state.withLock { $0.master } }

    /// From the first question on: the `+switch-master` subscription and the periodic check.
    private func startWatching() {
        watchers.withLock { watchers in
            guard !watchers.started else { return }
            watchers.started = true
            let subscriber = self.subscriber
            let onArrival: @Sendable (RedisSubscriptionEvent) -> Void = { [weak self] event in
                guard case .message(let message) = event else { return }
                self?.heard(switchMessage: String(decoding: message.payload, as: UTF8.self))
            }
            watchers.tasks.append(Task {
                while !Task.isCancelled {
                    // Ends only with the client (or a failure, after which it subscribes again).
                    try? await subscriber.subscribe(to: ["+switch-master"], onArrival: onArrival) { events in
                        for try await _ in events {}
                    }
                    try? await Task.sleep(for: .milliseconds(100))
                }
            })
            let interval = sentinel.recheckInterval
            watchers.tasks.append(Task { [weak self] in
                while !Task.isCancelled {
                    try? await Task.sleep(for: interval)
                    guard let self, !Task.isCancelled else { return }
                    _ = try? await self.masterAddress()
                }
            })
        }
    }

    private func heard(switchMessage: String) {
        guard let moved = state.withLock({ $0.heard(switchMessage: switchMessage) }) else { return }
        logger.info("Sentinel switched the master", metadata: ["redis.master": "\(moved)", "redis.sentinel.master_name": "\(sentinel.masterName)"])
        onMasterChange(moved)
    }

    func close() async {
        let tasks = watchers.withLock { watchers in
            watchers.started = true
            return watchers.tasks
        }
        for task in tasks { task.cancel() }
        await subscriber.close()
        for connection in connections { await connection.close() }
    }
}
