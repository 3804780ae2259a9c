/// How a ``RedisClient`` connects, authenticates, times out and reconnects.
///
/// Every field has a default that suits a cache in front of a local or same-zone Redis.
/// Build one from a URL with ``init(url:)`` or from an ``Endpoint``.
public struct RedisConfiguration: Sendable, CustomStringConvertible {
    /// Where the server listens.
    public enum Endpoint: Sendable, Hashable, CustomStringConvertible {
        case tcp(host: String, port: Int)
        case unixSocket(path: String)

        public var description: String {
            switch self {
            case .tcp(let host, let port): return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
            case .unixSocket(let path): return "unix:\(path)"
            }
        }
    }

    /// Delays between reconnect attempts: `initial`, doubling up to `maximum`, each scaled by
    /// a random factor in 0.5...1 so that many clients do not reconnect in step.
    public struct Backoff: Sendable, Hashable {
        /// The delay after the first failed attempt. Default: 50 ms.
        public var initial: Duration
        /// The largest delay. Default: 2 s.
        public var maximum: Duration

        public init(initial: Duration = .milliseconds(50), maximum: Duration = .seconds(2)) {
            self.initial = initial
            self.maximum = maximum
        }

        /// The delay before attempt number `attempt` (0 for the first retry).
        func delay(attempt: Int) -> Duration {
            let doubled = initial * Double(1 << min(attempt, 20))
            let capped = min(doubled, maximum)
            return capped * Double.random(in: 0.5...1)
        }
    }

    /// Where the server listens; in a cluster, the first node asked for the cluster's
    /// layout.
    public var endpoint: Endpoint
    /// For a Redis Cluster: more nodes to ask for the cluster's layout when ``endpoint``
    /// does not answer. `nil` for a standalone server. Default: `nil`.
    public var clusterSeeds: [Endpoint]?
    /// For a Redis Cluster: how often the client asks for the cluster's layout even when no
    /// command was redirected, to learn of failovers and new nodes before a command meets
    /// them. Default: 30 s.
    public var clusterRefreshInterval: Duration = .seconds(30)
    /// For a Redis under Sentinel: the Sentinels and the master's name
    /// (``RedisConfiguration/sentinel(masterName:sentinels:)``). Default: `nil`.
    public var sentinel: Sentinel?
    /// TLS to every server (and cluster node); `nil` for plain TCP. Default: `nil`.
    public var tls: TLS?
    /// The ACL user for `AUTH`; `nil` authenticates as the default user. Default: `nil`.
    public var username: String?
    /// The password for `AUTH`; `nil` sends no `AUTH`. Never printed. Default: `nil`.
    public var password: String?
    /// The database number for `SELECT`. Default: 0 (no `SELECT` is sent).
    public var database: Int
    /// The name given with `CLIENT SETNAME`; `nil` sends none. Default: `"stampede"`.
    public var clientName: String?
    /// How long a connection, including AUTH/SELECT/CLIENT SETNAME, may take. Default: 2 s.
    public var connectTimeout: Duration
    /// How long a command may wait for its reply before it fails with
    /// ``RedisError/Code/timeout``. Default: 1 s.
    public var commandTimeout: Duration
    /// Delays between reconnect attempts after a connection fails or drops.
    public var reconnectBackoff: Backoff
    /// How many command connections the client keeps; commands are spread over them and
    /// many are in flight on each. Pub/sub uses one more, opened on first use. Default: 1.
    public var connectionCount: Int

    public init(
        endpoint: Endpoint,
        username: String? = nil,
        password: String? = nil,
        database: Int = 0,
        clientName: String? = "stampede",
        connectTimeout: Duration = .seconds(2),
        commandTimeout: Duration = .seconds(1),
        reconnectBackoff: Backoff = Backoff(),
        connectionCount: Int = 1
    ) {
        self.endpoint = endpoint
        self.username = username
        self.password = password
        self.database = database
        self.clientName = clientName
        self.connectTimeout = connectTimeout
        self.commandTimeout = commandTimeout
        self.reconnectBackoff = reconnectBackoff
        self.connectionCount = connectionCount
    }

    /// Checks every field; a client refuses a configuration that fails here.
    public func validate() throws(RedisError) {
        func positive(_ value: Duration, _ name: String) throws(RedisError) {
            guard value > .zero else { throw RedisError(.invalidArgument, "\(name) must be positive, got \(value)") }
        }
        try positive(connectTimeout, "connectTimeout")
        try positive(commandTimeout, "commandTimeout")
        try positive(clusterRefreshInterval, "clusterRefreshInterval")
        try positive(reconnectBackoff.initial, "reconnectBackoff.initial")
        guard reconnectBackoff.maximum >= reconnectBackoff.initial else {
            throw RedisError(.invalidArgument, "reconnectBackoff.maximum must be at least reconnectBackoff.initial")
        }
        guard (1...64).contains(connectionCount) else {
            throw RedisError(.invalidArgument, "connectionCount must be within 1...64, got \(connectionCount)")
        }
        guard database >= 0 else { throw RedisError(.invalidArgument, "database must not be negative, got \(database)") }
        if case .tcp(let host, let port) = endpoint {
            guard !host.isEmpty else { throw RedisError(.invalidArgument, "the host name is empty") }
            guard (1...65535).contains(port) else { throw RedisError(.invalidArgument, "port must be within 1...65535, got \(port)") }
        }
        if case .unixSocket(let path) = endpoint, path.isEmpty {
            throw RedisError(.invalidArgument, "the unix socket path is empty")
        }
        try tls?.validate()
        if let sentinel {
            try sentinel.validate()
            guard !isCluster else { throw RedisError(.invalidArgument, "a configuration is for a cluster or for Sentinel, not both") }
        }
        if tls != nil, case .unixSocket = endpoint {
            throw RedisError(.invalidArgument, "TLS is for TCP connections, not a unix socket")
        }
        if username != nil && password == nil {
            throw RedisError(.invalidArgument, "a user name needs a password")
        }
        if isCluster {
            guard database == 0 else {
                throw RedisError(.invalidArgument, "a Redis Cluster has only database 0, got database \(database)")
            }
            for seed in [endpoint] + (clusterSeeds ?? []) {
                guard case .tcp(let host, let port) = seed, !host.isEmpty, (1...65535).contains(port) else {
                    throw RedisError(.invalidArgument, "a cluster node must be a TCP host and port, got \(seed)")
                }
            }
        }
    }

    /// Whether the client talks to a Redis Cluster.
    public var isCluster: Bool { clusterSeeds != nil }

    /// A configuration for the Redis Cluster that `seeds` belong to: the client asks them,
    /// in turn, for the cluster's layout, then talks to every master.
    public static func cluster(seeds: [Endpoint]) -> RedisConfiguration {
        var configuration = RedisConfiguration(endpoint: seeds.first ?? .tcp(host: "", port: 0))
        configuration.clusterSeeds = Array(seeds.dropFirst())
        return configuration
    }

    /// This configuration, talking to one node of its cluster.
    func node(_ address: ClusterNodeAddress) -> RedisConfiguration {
        var configuration = self
        configuration.endpoint = .tcp(host: address.host, port: address.port)
        configuration.clusterSeeds = nil
        return configuration
    }

    /// The configuration with the password hidden.
    public var description: String {
        var parts = ["endpoint: \(endpoint)"]
        if let username { parts.append("username: \(username)") }
        if password != nil { parts.append("password: <hidden>") }
        if tls != nil { parts.append("tls: on") }
        if let sentinel { parts.append("sentinel: \(sentinel.masterName) at \(sentinel.nodes.map(\.description).joined(separator: ","))") }
        if database != 0 { parts.append("database: \(database)") }
        if let clientName { parts.append("clientName: \(clientName)") }
        parts.append("connectTimeout: \(connectTimeout)")
        parts.append("commandTimeout: \(commandTimeout)")
        parts.append("connectionCount: \(connectionCount)")
        return "RedisConfiguration(\(parts.joined(separator: ", ")))"
    }
}
