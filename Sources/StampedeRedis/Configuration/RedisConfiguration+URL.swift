extension RedisConfiguration {
    /// Reads a Redis URL; every field it does not set keeps its default.
    ///
    /// Accepted forms:
    /// - `redis://[[user]:password@]host[:port][/db]` (port 6379 and database 0 by default;
    ///   `[::1]` for IPv6; user and password may be percent-encoded)
    /// - `rediss://...`: the same over TLS (needs the package's `TLS` trait)
    /// - `unix:///path/to/redis.sock`
    /// - `redis+cluster://[[user]:password@]host:port[,host:port...]` (or `rediss+cluster://`)
    ///   for a Redis Cluster: the nodes asked for its layout (see ``clusterSeeds``); no database
    /// - `redis+sentinel://[[user]:password@]host:port[,host:port...]/MASTERNAME[/db]` (or
    ///   `rediss+sentinel://`) for a Redis under Sentinel: the Sentinels, and the name they
    ///   know the master by (see ``sentinel``); the credentials and database are the master's
    ///
    /// Options go in the query, each at most once, values percent-encoded where needed:
    ///
    /// | option | sets |
    /// |---|---|
    /// | `db=N` | ``database`` (not for a cluster; not with a `/db` path) |
    /// | `connect_timeout_ms=N`, `command_timeout_ms=N` | ``connectTimeout``, ``commandTimeout`` |
    /// | `connections=N` | ``connectionCount`` |
    /// | `client_name=NAME` | ``clientName`` (empty: none is set) |
    /// | `cluster_refresh_ms=N` | ``clusterRefreshInterval`` (cluster only) |
    /// | `sentinel_username=NAME`, `sentinel_password=SECRET` | the Sentinels' own credentials (Sentinel only) |
    /// | `sentinel_recheck_ms=N` | ``Sentinel/recheckInterval`` (Sentinel only) |
    /// | `tls_ca_file=PATH` | ``TLS/trust``: the authorities in that PEM file (TLS only) |
    /// | `tls_cert_file=PATH`, `tls_key_file=PATH` | the client certificate and key (TLS only) |
    /// | `tls_server_name=NAME` | ``TLS/serverName`` (TLS only) |
    /// | `tls_verify_hostname=false` | ``TLS/verifiesHostname`` (TLS only) |
    ///
    /// ```swift
    /// try RedisConfiguration(url: "rediss://:secret@cache.internal:6380/2?tls_ca_file=/etc/redis/ca.pem&command_timeout_ms=250")
    /// ```
    ///
    /// - Throws: ``RedisError`` with code ``RedisError/Code/invalidURL`` naming the part or
    ///   option that is wrong; the message never repeats the password.
    public init(url: String) throws(RedisError) {
        func invalid(_ why: String) -> RedisError {
            RedisError(.invalidURL, "invalid Redis URL \(Self.redacted(url)): \(why)")
        }
        guard let schemeEnd = url.firstRange(of: "://") else {
            throw invalid("expected redis://host:port, rediss://host:port, redis+cluster://host:port,... or unix:///path")
        }
        let scheme = url[..<schemeEnd.lowerBound].lowercased()
        var rest = String(url[schemeEnd.upperBound...])
        guard !rest.contains("#") else { throw invalid("a fragment (#...) is not supported") }
        var query: Substring?
        if let question = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: question)...]
            rest = String(rest[..<question])
        }
        switch scheme {
        case "redis", "rediss":
            self = try Self.parseTCP(rest, cluster: false, invalid: invalid)
        case "redis+cluster", "rediss+cluster":
            self = try Self.parseTCP(rest, cluster: true, invalid: invalid)
        case "redis+sentinel", "rediss+sentinel":
            self = try Self.parseSentinel(rest, invalid: invalid)
        case "unix":
            self = try Self.parseUnix(rest, invalid: invalid)
        default:
            throw invalid("unknown scheme '\(scheme)'; expected redis://, rediss://, redis+cluster://, redis+sentinel:// (or rediss+ of either) or unix://")
        }
        if scheme.hasPrefix("rediss") { tls = TLS() }
        let databaseInPath = scheme != "unix" && rest.split(separator: "/").count > (scheme.hasSuffix("sentinel") ? 2 : 1)
        if let query { try applyOptions(query, databaseInPath: databaseInPath, invalid: invalid) }
    }

    /// The URL's query options, in order; see ``init(url:)``.
    private mutating func applyOptions(_ query: Substring, databaseInPath: Bool, invalid: (String) -> RedisError) throws(RedisError) {
        var seen = Set<Substring>()
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            guard let equals = pair.firstIndex(of: "=") else { throw invalid("option '\(pair)' has no value (name=value)") }
            let name = pair[..<equals]
            let value = try Self.decodePercent(pair[pair.index(after: equals)...], invalid: invalid)
            guard seen.insert(name).inserted else { throw invalid("option '\(name)' is given twice") }
            func number(_ range: ClosedRange<Int>) throws(RedisError) -> Int {
                guard let number = Int(value), range.contains(number) else {
                    throw invalid("option '\(name)' must be a whole number within \(range.lowerBound)...\(range.upperBound), got '\(value)'")
                }
                return number
            }
            func needsTLS() throws(RedisError) {
                guard tls != nil else { throw invalid("option '\(name)' is for TLS; use rediss:// (or rediss+cluster://)") }
            }
            switch name {
            case "db":
                guard !isCluster else { throw invalid("a Redis Cluster has only database 0") }
                guard !databaseInPath else { throw invalid("the database is given twice: in the path and as db=") }
                database = try number(0...Int(Int32.max))
            case "connect_timeout_ms": connectTimeout = .milliseconds(try number(1...3_600_000))
            case "command_timeout_ms": commandTimeout = .milliseconds(try number(1...3_600_000))
            case "connections": connectionCount = try number(1...64)
            case "client_name": clientName = value.isEmpty ? nil : value
            case "cluster_refresh_ms":
                guard isCluster else { throw invalid("option 'cluster_refresh_ms' is for a cluster; use redis+cluster://") }
                clusterRefreshInterval = .milliseconds(try number(1...86_400_000))
            case "sentinel_username", "sentinel_password":
                guard sentinel != nil else { throw invalid("option '\(name)' is for Sentinel; use redis+sentinel://") }
                if name == "sentinel_username" { sentinel?.username = value } else { sentinel?.password = value }
            case "sentinel_recheck_ms":
                guard sentinel != nil else { throw invalid("option '\(name)' is for Sentinel; use redis+sentinel://") }
                sentinel?.recheckInterval = .milliseconds(try number(1...3_600_000))
            case "tls_ca_file":
                try needsTLS()
                tls?.trust = .certificateAuthorityFile(value)
            case "tls_cert_file":
                try needsTLS()
                tls?.certificateFile = value
            case "tls_key_file":
                try needsTLS()
                tls?.privateKeyFile = value
            case "tls_server_name":
                try needsTLS()
                tls?.serverName = value
            case "tls_verify_hostname":
                try needsTLS()
                guard let verifies = Bool(value) else { throw invalid("option 'tls_verify_hostname' must be true or false, got '\(value)'") }
                tls?.verifiesHostname = verifies
            default:
                throw invalid("unknown option '\(name)'; known: db, connect_timeout_ms, command_timeout_ms, connections, client_name, cluster_refresh_ms, sentinel_username, sentinel_password, sentinel_recheck_ms, tls_ca_file, tls_cert_file, tls_key_file, tls_server_name, tls_verify_hostname")
            }
        }
    }

    private static func parseTCP(_ rest: String, cluster: Bool, invalid: (String) -> RedisError) throws(RedisError) -> RedisConfiguration {
        var authority = Substring(rest)
        var path: Substring = ""
        if let slash = authority.firstIndex(of: "/") {
            path = authority[authority.index(after: slash)...]
            authority = authority[..<slash]
        }
        var username: String?
        var password: String?
        if let at = authority.lastIndex(of: "@") {
            let userinfo = authority[..<at]
            authority = authority[authority.index(after: at)...]
            guard let colon = userinfo.firstIndex(of: ":") else {
                throw invalid("credentials must be user:password or :password")
            }
            let user = try decodePercent(userinfo[..<colon], invalid: invalid)
            username = user.isEmpty ? nil : user
            password = try decodePercent(userinfo[userinfo.index(after: colon)...], invalid: invalid)
            if password!.isEmpty { throw invalid("the password is empty") }
        }
        var endpoints: [Endpoint] = []
        for node in cluster ? authority.split(separator: ",", omittingEmptySubsequences: false) : [authority] {
            endpoints.append(try parseHostAndPort(node, invalid: invalid))
        }
        var database = 0
        if !path.isEmpty {
            guard let value = Int(path), value >= 0 else { throw invalid("the database must be a non-negative number") }
            guard !cluster || value == 0 else { throw invalid("a Redis Cluster has only database 0") }
            database = value
        }
        var configuration = RedisConfiguration(endpoint: endpoints[0], username: username, password: password, database: database)
        if cluster { configuration.clusterSeeds = Array(endpoints.dropFirst()) }
        return configuration
    }

    /// `host[:port]`, with `[...]` around an IPv6 host; port 6379 when none is given.
    private static func parseHostAndPort(_ authority: Substring, invalid: (String) -> RedisError) throws(RedisError) -> Endpoint {
        var host: Substring
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { throw invalid("unclosed '[' in the IPv6 host") }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw invalid("unexpected text after the IPv6 host") }
                portText = after.dropFirst()
            }
        } else if let colon = authority.firstIndex(of: ":") {
            host = authority[..<colon]
            portText = authority[authority.index(after: colon)...]
        } else {
            host = authority
        }
        guard !host.isEmpty else { throw invalid("the host is missing") }
        var port = 6379
        if let portText {
            guard let value = Int(portText), (1...65535).contains(value) else {
                throw invalid("the port must be a number within 1...65535")
            }
            port = value
        }
        return .tcp(host: String(host), port: port)
    }

    /// `[[user]:password@]host:port[,host:port...]/MASTERNAME[/db]`: the Sentinels, the
    /// master's name, and the master's credentials and database.
    private static func parseSentinel(_ rest: String, invalid: (String) -> RedisError) throws(RedisError) -> RedisConfiguration {
        let parts = rest.split(separator: "/", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, !parts[1].isEmpty else {
            throw invalid("the master's name is missing: redis+sentinel://host:port[,host:port...]/MASTERNAME[/db]")
        }
        let masterName = try decodePercent(parts[1], invalid: invalid)
        var configuration = try parseTCP(String(parts[0]), cluster: true, invalid: invalid)
        let sentinels = [configuration.endpoint] + (configuration.clusterSeeds ?? [])
        configuration.clusterSeeds = nil
        if parts.count == 3, !parts[2].isEmpty {
            guard let database = Int(parts[2]), database >= 0 else { throw invalid("the database must be a non-negative number") }
            configuration.database = database
        }
        configuration.sentinel = Sentinel(masterName: masterName, nodes: sentinels)
        return configuration
    }

    private static func parseUnix(_ rest: String, invalid: (String) -> RedisError) throws(RedisError) -> RedisConfiguration {
        guard rest.hasPrefix("/") else { throw invalid("the socket path must be absolute: unix:///path/to/redis.sock") }
        return RedisConfiguration(endpoint: .unixSocket(path: rest))
    }

    private static func decodePercent(_ text: Substring, invalid: (String) -> RedisError) throws(RedisError) -> String {
        var bytes: [UInt8] = []
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else { bytes.append(byte); continue }
            guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                throw invalid("bad percent-encoding in the credentials")
            }
            bytes.append(high << 4 | low)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    /// The URL with its credentials hidden (anything between `://` and the last `@` of the
    /// authority, and the value of a `sentinel_password` option), so that error messages
    /// never carry a password.
    static func redacted(_ url: String) -> String {
        var text = url
        if let option = text.firstRange(of: "sentinel_password=") {
            let valueEnd = text[option.upperBound...].firstIndex(of: "&") ?? text.endIndex
            text.replaceSubrange(option.upperBound..<valueEnd, with: "<hidden>")
        }
        guard let schemeEnd = text.firstRange(of: "://") else { return "'<unparsable>'" }
        let rest = text[schemeEnd.upperBound...]
        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" } ?? rest.endIndex
        guard let at = rest[..<authorityEnd].lastIndex(of: "@") else { return "'\(text)'" }
        return "'\(text[..<schemeEnd.upperBound])<credentials>\(rest[at...])'"
    }
}
