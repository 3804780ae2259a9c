extension RedisConfiguration {
    /// Where a Redis under Sentinel is: the Sentinels to ask, and the name they know its
    /// master by. With it, ``RedisConfiguration/endpoint`` is not used: every connection goes
    /// to the master the Sentinels name, and moves when they fail over to another.
    public struct Sentinel: Sendable, Hashable {
        /// The name the Sentinels monitor the master under (`sentinel monitor NAME ...`).
        public var masterName: String
        /// The Sentinels, asked in turn.
        public var nodes: [Endpoint]
        /// The Sentinels' own credentials (`requirepass` in their configuration), when they
        /// have any. Default: `nil`.
        public var username: String?
        public var password: String?
        /// Whether the Sentinels speak TLS too (with ``RedisConfiguration/tls``'s settings).
        /// Default: `true` when ``RedisConfiguration/tls`` is set.
        public var usesTLS: Bool?
        /// How often the Sentinels are asked where the master is even without a
        /// `+switch-master` message, in case one was missed. Default: 2 s.
        public var recheckInterval: Duration

        public init(
            masterName: String, nodes: [Endpoint], username: String? = nil, password: String? = nil,
            usesTLS: Bool? = nil, recheckInterval: Duration = .seconds(2)
        ) {
            self.masterName = masterName
            self.nodes = nodes
            self.username = username
            self.password = password
            self.usesTLS = usesTLS
            self.recheckInterval = recheckInterval
        }

        func validate() throws(RedisError) {
            guard !masterName.isEmpty else { throw RedisError(.invalidArgument, "sentinel.masterName is empty") }
            guard !nodes.isEmpty else { throw RedisError(.invalidArgument, "sentinel.nodes is empty: name at least one Sentinel") }
            for node in nodes {
                guard case .tcp(let host, let port) = node, !host.isEmpty, (1...65535).contains(port) else {
                    throw RedisError(.invalidArgument, "a Sentinel must be a TCP host and port, got \(node)")
                }
            }
            guard recheckInterval > .zero else {
                throw RedisError(.invalidArgument, "sentinel.recheckInterval must be positive, got \(recheckInterval)")
            }
            if username != nil && password == nil { throw RedisError(.invalidArgument, "sentinel.username needs sentinel.password") }
        }
    }

    /// A configuration for the master that `sentinels` know as `masterName`.
    public static func sentinel(masterName: String, sentinels: [Endpoint]) -> RedisConfiguration {
        var configuration = RedisConfiguration(endpoint: sentinels.first ?? .tcp(host: "", port: 0))
        configuration.sentinel = Sentinel(masterName: masterName, nodes: sentinels)
        return configuration
    }

    /// How this client talks to its Sentinels: their address, their credentials, TLS as
    /// configured, no database.
    func sentinelNode(_ node: Endpoint) -> RedisConfiguration {
        var configuration = self
        configuration.endpoint = node
        configuration.sentinel = nil
        configuration.clusterSeeds = nil
        configuration.database = 0
        configuration.username = sentinel?.username
        configuration.password = sentinel?.password
        if !(sentinel?.usesTLS ?? (tls != nil)) { configuration.tls = nil }
        return configuration
    }

    /// This configuration, talking to the master at `endpoint`.
    func master(at endpoint: Endpoint) -> RedisConfiguration {
        var configuration = self
        configuration.endpoint = endpoint
        configuration.sentinel = nil
        return configuration
    }
}
