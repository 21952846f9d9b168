//! Support for the workspace's integration tests and examples: a `memcached` server each test
//! starts on a free loopback port and stops on drop.
