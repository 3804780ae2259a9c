extension RedisConfiguration {
    /// Reads a Redis URL; every other field keeps its default.
    ///
    /// Accepted forms:
    /// - `redis://[[user]:password@]host[:port][/db]` (port 6379 and database 0 by default;
    ///   `[::1]` for IPv6; user and password may be percent-encoded)
    /// - `unix:///path/to/redis.sock[?db=N]`
    /// - `redis+cluster://[[user]:password@]host:port[,host:port...]` for a Redis Cluster: the
    ///   nodes asked for its layout (see ``clusterSeeds``); no database
    ///
    /// - Throws: ``RedisError`` with code ``RedisError/Code/invalidURL`` saying which part is
    ///   wrong; the message never repeats the password.
    public init(url: String) throws(RedisError) {
        func invalid(_ why: String) -> RedisError {
            RedisError(.invalidURL, "invalid Redis URL \(Self.redacted(url)): \(why)")
        }
        guard let schemeEnd = url.firstRange(of: "://") else {
            throw invalid("expected redis://host:port or unix:///path")
        }
        let scheme = url[..<schemeEnd.lowerBound].lowercased()
        let rest = String(url[schemeEnd.upperBound...])
        switch scheme {
        case "redis":
            self = try Self.parseTCP(rest, cluster: false, invalid: invalid)
        case "redis+cluster":
            self = try Self.parseTCP(rest, cluster: true, invalid: invalid)
        case "unix":
            self = try Self.parseUnix(rest, invalid: invalid)
        case "rediss":
            throw invalid("TLS (rediss://) is not supported; use redis:// or unix://")
        default:
            throw invalid("unknown scheme '\(scheme)'; expected redis://, redis+cluster:// or unix://")
        }
    }

    private static func parseTCP(_ rest: String, cluster: Bool, invalid: (String) -> RedisError) throws(RedisError) -> RedisConfiguration {
        guard !rest.contains("?"), !rest.contains("#") else { throw invalid("query and fragment are not supported") }
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

    private static func parseUnix(_ rest: String, invalid: (String) -> RedisError) throws(RedisError) -> RedisConfiguration {
        var path = Substring(rest)
        var database = 0
        if let question = path.firstIndex(of: "?") {
            let query = path[path.index(after: question)...]
            path = path[..<question]
            guard query.hasPrefix("db="), let value = Int(query.dropFirst(3)), value >= 0 else {
                throw invalid("the only query supported is db=N with a non-negative N")
            }
            database = value
        }
        guard path.hasPrefix("/") else { throw invalid("the socket path must be absolute: unix:///path/to/redis.sock") }
        return RedisConfiguration(endpoint: .unixSocket(path: String(path)), database: database)
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

    /// The URL with anything between `://` and the last `@` of the authority replaced,
    /// so that error messages never carry a password.
    static func redacted(_ url: String) -> String {
        guard let schemeEnd = url.firstRange(of: "://") else { return "'<unparsable>'" }
        let rest = url[schemeEnd.upperBound...]
        let authorityEnd = rest.firstIndex(of: "/") ?? rest.endIndex
        guard let at = rest[..<authorityEnd].lastIndex(of: "@") else { return "'\(url)'" }
        return "'\(url[..<schemeEnd.upperBound])<credentials>\(rest[at...])'"
    }
}
