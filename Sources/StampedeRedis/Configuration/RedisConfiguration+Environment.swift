#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension RedisConfiguration {
    /// Reads the configuration from environment variables, so that a deployment sets it (and
    /// keeps the password out of code and command lines):
    ///
    /// | variable | |
    /// |---|---|
    /// | `REDIS_URL` | required: any URL ``init(url:)`` reads, options included |
    /// | `REDIS_USERNAME`, `REDIS_PASSWORD` | the credentials, instead of in the URL |
    /// | `REDIS_TLS_CA_FILE`, `REDIS_TLS_CERT_FILE`, `REDIS_TLS_KEY_FILE` | TLS files, instead of in the URL (with a `rediss` URL) |
    ///
    /// ```swift
    /// let client = try RedisClient(configuration: .init(environment: .process()))
    /// ```
    ///
    /// `prefix` replaces `REDIS_` (for example `CACHE_REDIS_` for a second Redis).
    ///
    /// - Throws: ``RedisError`` (``RedisError/Code/invalidURL`` or
    ///   ``RedisError/Code/invalidArgument``) naming the variable that is missing or wrong;
    ///   never a password.
    public init(environment: [String: String], prefix: String = "REDIS_") throws(RedisError) {
        func variable(_ name: String) -> String? {
            guard let value = environment[prefix + name], !value.isEmpty else { return nil }
            return value
        }
        guard let url = variable("URL") else {
            throw RedisError(.invalidArgument, "\(prefix)URL is not set: it names the Redis to use, for example redis://host:6379/0")
        }
        do {
            try self.init(url: url)
        } catch {
            throw RedisError(error.code, "\(prefix)URL: \(error.message)")
        }
        if let username = variable("USERNAME") {
            guard variable("PASSWORD") != nil || password != nil else {
                throw RedisError(.invalidArgument, "\(prefix)USERNAME is set without a password (\(prefix)PASSWORD)")
            }
            self.username = username
        }
        if let password = variable("PASSWORD") { self.password = password }
        let files = [("TLS_CA_FILE", \TLS.caFile), ("TLS_CERT_FILE", \TLS.certificateFile), ("TLS_KEY_FILE", \TLS.privateKeyFile)]
        for (name, field) in files {
            guard let value = variable(name) else { continue }
            guard tls != nil else {
                throw RedisError(.invalidArgument, "\(prefix)\(name) is set, but \(prefix)URL is not a rediss:// URL")
            }
            tls![keyPath: field] = value
        }
    }
}

extension [String: String] {
    /// This process's environment variables.
    public static func process() -> [String: String] {
        var variables: [String: String] = [:]
        var entry = environ
        while let pointer = entry.pointee {
            let text = String(cString: pointer)
            if let equals = text.firstIndex(of: "=") {
                variables[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
            entry += 1
        }
        return variables
    }
}

extension RedisConfiguration.TLS {
    /// The trust as a CA file path, for the environment's `..._TLS_CA_FILE`.
    fileprivate var caFile: String? {
        get {
            if case .certificateAuthorityFile(let path) = trust { return path }
            return nil
        }
        set { trust = newValue.map { .certificateAuthorityFile($0) } ?? .system }
    }
}
