import StampedeTestSupport
import Testing
import StampedeRedis

@Suite("Redis URLs")
struct URLTests {
    @Test func readsEveryPart() throws {
        let full = try RedisConfiguration(url: "redis://bob:p%40ss%3Aword@cache.example:6380/2")
        #expect(full.endpoint == .tcp(host: "cache.example", port: 6380))
        #expect(full.username == "bob")
        #expect(full.password == "p@ss:word")
        #expect(full.database == 2)

        let plain = try RedisConfiguration(url: "redis://localhost")
        #expect(plain.endpoint == .tcp(host: "localhost", port: 6379))
        #expect(plain.username == nil && plain.password == nil && plain.database == 0)

        let passwordOnly = try RedisConfiguration(url: "redis://:secret@127.0.0.1:7000")
        #expect(passwordOnly.username == nil && passwordOnly.password == "secret")

        let ipv6 = try RedisConfiguration(url: "redis://[::1]:7001/0")
        #expect(ipv6.endpoint == .tcp(host: "::1", port: 7001))

        let unix = try RedisConfiguration(url: "unix:///run/redis/redis.sock?db=4")
        #expect(unix.endpoint == .unixSocket(path: "/run/redis/redis.sock"))
        #expect(unix.database == 4)
    }

    @Test("a cluster URL names its seed nodes, credentials once for all")
    func readsAClusterURL() throws {
        let cluster = try RedisConfiguration(url: "redis+cluster://app:s%40cret@10.0.0.1:7000,10.0.0.2,[::1]:7002")
        #expect(cluster.isCluster)
        #expect(cluster.endpoint == .tcp(host: "10.0.0.1", port: 7000))
        #expect(cluster.clusterSeeds == [.tcp(host: "10.0.0.2", port: 6379), .tcp(host: "::1", port: 7002)])
        #expect(cluster.username == "app" && cluster.password == "s@cret")
        #expect(try RedisConfiguration(url: "redis+cluster://one:7000/0").clusterSeeds == [])
        #expect(try !RedisConfiguration(url: "redis://one:7000").isCluster)
    }

    @Test(arguments: [
        ("localhost:6379", "expected redis://"),
        ("http://localhost", "unknown scheme"),
        ("redis://", "host is missing"),
        ("redis://:6379", "host is missing"),
        ("redis://localhost:0", "port"),
        ("redis://localhost:99999", "port"),
        ("redis://localhost:abc", "port"),
        ("redis://localhost/-1", "database"),
        ("redis://localhost/x", "database"),
        ("redis://user@localhost", "user:password"),
        ("redis://:@localhost", "password is empty"),
        ("redis://:%zz@localhost", "percent-encoding"),
        ("redis://[::1", "unclosed"),
        ("redis://localhost?timeout=1", "unknown option 'timeout'"),
        ("redis://localhost?connections=0", "'connections' must be a whole number within 1...64"),
        ("redis://localhost?connections=2&connections=3", "given twice"),
        ("redis://localhost?command_timeout_ms=fast", "'command_timeout_ms'"),
        ("redis://localhost/2?db=3", "given twice"),
        ("redis://localhost?db", "no value"),
        ("redis://localhost?tls_ca_file=/ca.pem", "use rediss://"),
        ("rediss://localhost?tls_verify_hostname=maybe", "true or false"),
        ("redis://localhost?cluster_refresh_ms=10", "for a cluster"),
        ("redis+cluster://a:7000?db=1", "only database 0"),
        ("redis://localhost#frag", "fragment"),
        ("unix://relative.sock", "absolute"),
        ("unix:///tmp/r.sock?db=x", "'db' must be a whole number"),
        ("redis+cluster://a:7000,:7001", "host is missing"),
        ("redis+cluster://a:7000,", "host is missing"),
        ("redis+cluster://a:7000,b:0", "port"),
        ("redis+cluster://a:7000/2", "only database 0"),
    ])
    func rejectsAMalformedURLWithAClearMessage(url: String, mentions: String) {
        do {
            _ = try RedisConfiguration(url: url)
            Issue.record("\(url) was accepted")
        } catch {
            #expect(error.code == .invalidURL)
            #expect(error.message.contains(mentions), "\(error.message)")
        }
    }

    @Test("query options set the timeouts, connections, client name and TLS files; rediss:// turns TLS on")
    func readsOptions() throws {
        let options = try RedisConfiguration(url: "redis://h:1/2?connect_timeout_ms=250&command_timeout_ms=75&connections=4&client_name=billing%20api")
        #expect(options.database == 2)
        #expect(options.connectTimeout == .milliseconds(250) && options.commandTimeout == .milliseconds(75))
        #expect(options.connectionCount == 4 && options.clientName == "billing api")
        #expect(options.tls == nil)
        #expect(try RedisConfiguration(url: "redis://h?client_name=").clientName == nil)
        #expect(try RedisConfiguration(url: "redis://h?db=5").database == 5)

        let tls = try RedisConfiguration(url: "rediss://:pw@h:6380?tls_ca_file=/etc/ca.pem&tls_cert_file=/c.pem&tls_key_file=/k.pem&tls_server_name=cache.internal&tls_verify_hostname=false")
        #expect(tls.endpoint == .tcp(host: "h", port: 6380) && tls.password == "pw")
        #expect(tls.tls == RedisConfiguration.TLS(
            trust: .certificateAuthorityFile("/etc/ca.pem"), certificateFile: "/c.pem", privateKeyFile: "/k.pem",
            serverName: "cache.internal", verifiesHostname: false))
        #expect(try RedisConfiguration(url: "rediss://h").tls == RedisConfiguration.TLS())

        let cluster = try RedisConfiguration(url: "rediss+cluster://a:7000,b:7001?cluster_refresh_ms=5000")
        #expect(cluster.isCluster && cluster.tls != nil && cluster.clusterRefreshInterval == .seconds(5))
        #expect("\(tls)".contains("tls: on") && !"\(tls)".contains("pw"))
    }

    @Test("from the environment: REDIS_URL with the credentials and TLS files apart; each bad variable named")
    func readsTheEnvironment() throws {
        let configuration = try RedisConfiguration(environment: [
            "REDIS_URL": "rediss://cache.internal:6380/1?command_timeout_ms=300", "REDIS_USERNAME": "app", "REDIS_PASSWORD": "pa ss",
            "REDIS_TLS_CA_FILE": "/etc/ca.pem", "REDIS_TLS_CERT_FILE": "/c.pem", "REDIS_TLS_KEY_FILE": "/k.pem", "HOME": "/root",
        ])
        #expect(configuration.endpoint == .tcp(host: "cache.internal", port: 6380) && configuration.database == 1)
        #expect(configuration.username == "app" && configuration.password == "pa ss")
        #expect(configuration.commandTimeout == .milliseconds(300))
        #expect(configuration.tls == RedisConfiguration.TLS(trust: .certificateAuthorityFile("/etc/ca.pem"), certificateFile: "/c.pem", privateKeyFile: "/k.pem"))
        #expect(try RedisConfiguration(environment: ["CACHE_REDIS_URL": "redis://other:7000"], prefix: "CACHE_REDIS_").endpoint == .tcp(host: "other", port: 7000))

        for (environment, mentions) in [
            ([:], "REDIS_URL is not set"),
            (["REDIS_URL": "redis://h:0"], "REDIS_URL: invalid Redis URL"),
            (["REDIS_URL": "redis://h", "REDIS_USERNAME": "app"], "REDIS_USERNAME is set without a password"),
            (["REDIS_URL": "redis://h", "REDIS_TLS_CA_FILE": "/ca.pem"], "REDIS_TLS_CA_FILE is set, but REDIS_URL is not a rediss:// URL"),
        ] as [([String: String], String)] {
            #expect(throws: RedisError.self) { try RedisConfiguration(environment: environment) }
            do { _ = try RedisConfiguration(environment: environment) } catch { #expect(error.message.contains(mentions), "\(error.message)") }
        }
        #expect([String: String].process()["PATH"] != nil)
    }

    @Test("a Sentinel URL names the Sentinels and the master; the master's credentials and database, the Sentinels' apart")
    func readsASentinelURL() throws {
        let configuration = try RedisConfiguration(url: "rediss+sentinel://:pw@s1:26379,s2:26380/my%20master/3?sentinel_password=sp&sentinel_recheck_ms=750")
        let sentinel = try #require(configuration.sentinel)
        #expect(sentinel.masterName == "my master")
        #expect(sentinel.nodes == [.tcp(host: "s1", port: 26379), .tcp(host: "s2", port: 26380)])
        #expect(sentinel.password == "sp" && sentinel.recheckInterval == .milliseconds(750))
        #expect(configuration.password == "pw" && configuration.database == 3 && configuration.tls != nil && !configuration.isCluster)
        #expect(try RedisConfiguration(url: "redis+sentinel://s1/m").sentinel?.nodes == [.tcp(host: "s1", port: 6379)])
        for (url, mentions) in [
            ("redis+sentinel://s1:26379", "the master's name is missing"),
            ("redis+sentinel://s1:26379/", "the master's name is missing"),
            ("redis+sentinel://s1:26379/m/x", "database"),
            ("redis://h?sentinel_password=x", "for Sentinel"),
        ] {
            do {
                _ = try RedisConfiguration(url: url)
                Issue.record("\(url) was accepted")
            } catch {
                #expect(error.message.contains(mentions), "\(error.message)")
            }
        }
        // The Sentinels' password never shows either.
        do {
            _ = try RedisConfiguration(url: "redis+sentinel://s1/m?sentinel_password=hunter3&nope=1")
            Issue.record("accepted")
        } catch {
            #expect(!error.message.contains("hunter3"), "\(error.message)")
        }
    }

    @Test func errorsAndDescriptionsNeverCarryThePassword() throws {
        do {
            _ = try RedisConfiguration(url: "redis://admin:hunter2@localhost:notaport")
            Issue.record("accepted")
        } catch {
            #expect(!error.message.contains("hunter2"))
            #expect(!"\(error)".contains("hunter2"))
        }
        let configuration = try RedisConfiguration(url: "redis://admin:hunter2@localhost")
        #expect(!"\(configuration)".contains("hunter2"))
        #expect("\(configuration)".contains("<hidden>"))
    }
}
