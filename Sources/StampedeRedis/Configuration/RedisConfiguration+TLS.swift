extension RedisConfiguration {
    /// How a client speaks TLS to Redis (`rediss://`). Needs the package's `TLS` trait.
    ///
    /// The server's certificate is always verified against the trusted authorities, and by
    /// default against the host name (or IP address) the client connects to; only the host
    /// name check can be turned off, for test set-ups whose certificates name another host.
    public struct TLS: Sendable, Hashable {
        /// The authorities that a server's certificate must chain to.
        public enum Trust: Sendable, Hashable {
            /// The system's trusted authorities.
            case system
            /// The authorities in a PEM file, instead of the system's.
            case certificateAuthorityFile(String)
        }

        /// Default: ``Trust/system``.
        public var trust: Trust
        /// A PEM certificate (chain) to present to servers that ask for one (mutual TLS);
        /// needs ``privateKeyFile``. Default: `nil`.
        public var certificateFile: String?
        /// The PEM private key of ``certificateFile``. Default: `nil`.
        public var privateKeyFile: String?
        /// The name sent with SNI and checked against the certificate, when it is not the host
        /// connected to. Default: `nil` (the host; an IP address is checked against the
        /// certificate's IP entries).
        public var serverName: String?
        /// Whether the certificate must name the host (or ``serverName``). Default: `true`.
        public var verifiesHostname: Bool

        public init(
            trust: Trust = .system, certificateFile: String? = nil, privateKeyFile: String? = nil,
            serverName: String? = nil, verifiesHostname: Bool = true
        ) {
            self.trust = trust
            self.certificateFile = certificateFile
            self.privateKeyFile = privateKeyFile
            self.serverName = serverName
            self.verifiesHostname = verifiesHostname
        }

        func validate() throws(RedisError) {
            guard (certificateFile == nil) == (privateKeyFile == nil) else {
                throw RedisError(.invalidArgument, "tls: a client certificate needs its private key, and a private key its certificate")
            }
            if let serverName, serverName.isEmpty { throw RedisError(.invalidArgument, "tls.serverName is empty") }
        }
    }
}
