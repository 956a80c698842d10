//! The MCP server (`vitaltrends mcp`): tools, resources and prompts over the local history, for
//! Claude Desktop and any MCP client that starts it over stdio. Every tool is read-only and
//! answers with structured content whose schema comes from `model`. stdout carries protocol
//! messages only; the caller logs to stderr.

use rmcp::handler::server::router::prompt::PromptRouter;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    ErrorData, Implementation, ListResourcesResult, PaginatedRequestParams, PromptMessage,
    ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, Resource,
    ResourceContents, Role, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{
    prompt, prompt_handler, prompt_router, tool, tool_handler, tool_router, Json, RoleServer,
    ServerHandler, ServiceExt,
};

use crate::model::*;
use crate::{Error, Reader};

pub const PROFILE_URI: &str = "vitaltrends://profile";
pub const DATA_MODEL_URI: &str = "vitaltrends://data-model";

/// What the data means, for the data-model resource and the server's instructions.
pub const DATA_MODEL: &str = "\
# VitalTrends data model

VitalTrends keeps the person's complete WHOOP history in a local SQLite file, kept fresh by the \
desktop app (webhooks through the VitalTrends relay, or polling). These tools read it; they never \
call WHOOP and never change anything.

- **Day**: every value belongs to a local \"WHOOP day\". A cycle (and the main sleep that starts \
it) counts for the local date 12 hours after it began, so a 23:30 bedtime counts for the next \
morning. Workouts and naps count for the local date they started. Local means the time zone in \
force when the record was made, so travel keeps days right.
- **Score states**: WHOOP scores records some time after they end. `pending: true` or \
`PENDING_SCORE` means not scored yet (ask again later); `UNSCORABLE` means WHOOP could not score \
it. Neither is ever reported as zero; series simply have no value for that day.
- **Metrics** (one per day): recovery (%; green 67-100, yellow 34-66, red 0-33), hrv (ms, RMSSD), \
resting_heart_rate (bpm), sleep_performance (%), sleep_hours (asleep in the main sleep), \
sleep_need_hours, day_strain (0-21), workout_strain (highest of the day), respiratory_rate \
(breaths/min), spo2 (%), skin_temp (°C).
- **Ranges** (7d, 30d, 90d, 1y, all) end at the newest day in the data; `data_status` says how \
fresh that is, what is pending, and where days are missing. Say so when data is incomplete.
";

#[derive(Clone)]
pub struct Server {
    reader: Reader,
    tool_router: ToolRouter<Self>,
    prompt_router: PromptRouter<Self>,
}

fn failed(e: Error) -> String {
    format!("{}: {e}", e.code())
}

#[tool_router(router = tool_router)]
impl Server {
    pub fn new(reader: Reader) -> Self {
        Server {
            reader,
            tool_router: Self::tool_router(),
            prompt_router: Self::prompt_router(),
        }
    }

    /// The newest WHOOP day: recovery with its colour band, HRV, resting heart rate, last
    /// night's sleep performance and stages, and day strain so far, each with its 30-day
    /// baseline and whether WHOOP is still scoring it.
    #[tool(annotations(title = "Today", read_only_hint = true, open_world_hint = false))]
    async fn get_today(&self) -> Result<Json<Today>, String> {
        self.reader.today().await.map(Json).map_err(failed)
    }

    /// One metric per day over a range, optionally with a rolling average.
    #[tool(annotations(
        title = "Metric series",
        read_only_hint = true,
        open_world_hint = false
    ))]
    async fn get_metric_series(
        &self,
        Parameters(input): Parameters<SeriesInput>,
    ) -> Result<Json<Series>, String> {
        self.reader.series(&input).await.map(Json).map_err(failed)
    }

    /// Means, min/max, trend per week and best/worst days of a period (default the last 7
    /// days), each against the period of equal length just before.
    #[tool(annotations(
        title = "Summarize a period",
        read_only_hint = true,
        open_world_hint = false
    ))]
    async fn summarize_period(
        &self,
        Parameters(input): Parameters<SummaryInput>,
    ) -> Result<Json<PeriodSummary>, String> {
        self.reader.summary(&input).await.map(Json).map_err(failed)
    }

    /// Two periods side by side: statistics of each and the difference of the means.
    #[tool(annotations(
        title = "Compare periods",
        read_only_hint = true,
        open_world_hint = false
    ))]
    async fn compare_periods(
        &self,
        Parameters(input): Parameters<CompareInput>,
    ) -> Result<Json<Comparison>, String> {
        self.reader.compare(&input).await.map(Json).map_err(failed)
    }

    /// Pearson correlation between two daily metrics, optionally with a lag (e.g. x =
    /// workout_strain, y = recovery, lag_days = 1 for next-day recovery), with the number of
    /// day pairs.
    #[tool(annotations(
        title = "Correlate metrics",
        read_only_hint = true,
        open_world_hint = false
    ))]
    async fn correlate(
        &self,
        Parameters(input): Parameters<CorrelateInput>,
    ) -> Result<Json<Correlation>, String> {
        self.reader
            .correlate(&input)
            .await
            .map(Json)
            .map_err(failed)
    }

    /// Workouts, newest first, filtered by sport, days and strain.
    #[tool(annotations(
        title = "List workouts",
        read_only_hint = true,
        open_world_hint = false
    ))]
    async fn list_workouts(
        &self,
        Parameters(input): Parameters<WorkoutsInput>,
    ) -> Result<Json<Workouts>, String> {
        self.reader.workouts(&input).await.map(Json).map_err(failed)
    }

    /// One night: the main sleep's stages, disturbances, efficiency, consistency, respiratory
    /// rate and need, plus that day's naps.
    #[tool(annotations(
        title = "One night's sleep",
        read_only_hint = true,
        open_world_hint = false
    ))]
    async fn get_sleep(
        &self,
        Parameters(input): Parameters<SleepInput>,
    ) -> Result<Json<Night>, String> {
        self.reader.sleep(&input).await.map(Json).map_err(failed)
    }

    /// What is imported: records per score state, first and last day, freshness, missing days,
    /// connection and sync state. Check it before concluding from a short or old series.
    #[tool(annotations(title = "Data status", read_only_hint = true, open_world_hint = false))]
    async fn data_status(&self) -> Result<Json<DataStatus>, String> {
        self.reader.status().await.map(Json).map_err(failed)
    }
}

#[prompt_router]
impl Server {
    /// Review the last week against the week before.
    #[prompt(name = "weekly_review")]
    async fn weekly_review(&self) -> Vec<PromptMessage> {
        vec![PromptMessage::new_text(
            Role::User,
            "Review my last week of WHOOP data. First call data_status and mention anything \
             pending or missing. Then call summarize_period with range 7d and list_workouts for \
             the same days. Tell me how recovery, HRV, resting heart rate, sleep (hours vs need) \
             and strain compared with the week before, my best and worst days and why they \
             might have been, and one or two concrete things to try next week."
                .to_string(),
        )]
    }

    /// Look for reasons behind a low recovery.
    #[prompt(name = "why_is_my_recovery_low")]
    async fn why_is_my_recovery_low(&self) -> Vec<PromptMessage> {
        vec![PromptMessage::new_text(
            Role::User,
            "My recovery is low. Call get_today, then get_sleep for last night, \
             get_metric_series for hrv, resting_heart_rate, respiratory_rate and skin_temp over \
             30d, and list_workouts for the last 3 days. Explain which of sleep (hours vs need, \
             disturbances), training load, or signs of illness (raised resting heart rate, \
             respiratory rate or skin temperature) best explains it, citing the numbers, and \
             say plainly if the data is pending or incomplete."
                .to_string(),
        )]
    }
}

#[tool_handler(router = self.tool_router)]
#[prompt_handler(router = self.prompt_router)]
impl ServerHandler for Server {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_prompts()
                .enable_resources()
                .build(),
        )
        .with_server_info(Implementation::new(
            "vitaltrends",
            env!("CARGO_PKG_VERSION"),
        ))
        .with_instructions(DATA_MODEL)
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        Ok(ListResourcesResult::with_all_items(vec![
            Resource::new(PROFILE_URI, "profile")
                .with_description("The WHOOP member this history belongs to")
                .with_mime_type("application/json"),
            Resource::new(DATA_MODEL_URI, "data-model")
                .with_description("What the tools' days, score states and metrics mean")
                .with_mime_type("text/markdown"),
        ]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let text = match request.uri.as_str() {
            PROFILE_URI => {
                let profile = self
                    .reader
                    .profile()
                    .await
                    .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
                serde_json::to_string_pretty(&profile)
                    .map_err(|e| ErrorData::internal_error(e.to_string(), None))?
            }
            DATA_MODEL_URI => DATA_MODEL.to_string(),
            other => {
                return Err(ErrorData::resource_not_found(
                    format!("no resource {other}"),
                    None,
                ))
            }
        };
        Ok(ReadResourceResult::new(vec![ResourceContents::text(text, request.uri)]).into())
    }
}

/// Serves MCP over stdin/stdout until the client closes stdin. Errors come back as text for
/// the caller to print on stderr.
pub async fn serve_stdio(reader: Reader) -> Result<(), String> {
    let service = Server::new(reader)
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| format!("starting the MCP session: {e}"))?;
    service
        .waiting()
        .await
        .map_err(|e| format!("MCP session: {e}"))?;
    Ok(())
}
