//! What a release build bakes in for the VitalTrends service: its WHOOP client id and relay URL,
//! read at compile time from `VITALTRENDS_RELEASE_WHOOP_CLIENT_ID` and
//! `VITALTRENDS_RELEASE_RELAY_URL` (and `VITALTRENDS_RELEASE_WHOOP_BASE_URL` for a build against
//! a WHOOP other than production; README, "Releasing"). A build without them has no service
//! mode, and the window asks how to connect instead.

/// The service a build was made for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Release {
    pub client_id: Option<String>,
    pub relay_url: Option<String>,
    /// WHOOP's API host for the service, where it is not production (a staging build).
    pub whoop_base_url: Option<String>,
}

impl Release {
    /// The values baked into this build. In debug builds (tests, development) the same variables
    /// at run time stand in for missing baked-in ones: the test hook that lets one test binary
    /// play a service build. Release builds never read them at run time.
    pub fn of_this_build() -> Release {
        let baked = |value: Option<&'static str>| {
            value.map(str::to_string).filter(|v| !v.trim().is_empty())
        };
        let mut release = Release {
            client_id: baked(option_env!("VITALTRENDS_RELEASE_WHOOP_CLIENT_ID")),
            relay_url: baked(option_env!("VITALTRENDS_RELEASE_RELAY_URL")),
            whoop_base_url: baked(option_env!("VITALTRENDS_RELEASE_WHOOP_BASE_URL")),
        };
        if cfg!(debug_assertions) {
            let at_run_time =
                |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
            release.client_id = release
                .client_id
                .or_else(|| at_run_time("VITALTRENDS_RELEASE_WHOOP_CLIENT_ID"));
            release.relay_url = release
                .relay_url
                .or_else(|| at_run_time("VITALTRENDS_RELEASE_RELAY_URL"));
            release.whoop_base_url = release
                .whoop_base_url
                .or_else(|| at_run_time("VITALTRENDS_RELEASE_WHOOP_BASE_URL"));
        }
        release
    }

    /// Whether this build can connect through the VitalTrends service.
    pub fn has_service(&self) -> bool {
        self.client_id.is_some() && self.relay_url.is_some()
    }
}
