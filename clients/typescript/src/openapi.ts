// Generated from sandlot's GET /openapi.json by scripts/openapi.mjs: do not edit by hand.
// Regenerate with `npm run openapi`; the test run fails when this file and the server disagree.
export type paths = {
    "/v1/execute": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Run code once in a fresh sandbox */
        post: operations["execute_v1_execute_post"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/batch": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Run many items in one round trip
         * @description Items without a session run in parallel, each in its own sandbox; items for one session run in order.
         *     Streamed, each result leaves as soon as it and every one before it are in.
         */
        post: operations["batch_v1_batch_post"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/sessions": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** List your sessions */
        get: operations["list_sessions_v1_sessions_get"];
        put?: never;
        /** Create a session */
        post: operations["create_session_v1_sessions_post"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/sessions/import": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** A new session from an archive */
        post: operations["import_session_v1_sessions_import_post"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/sessions/{session_id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Get a session */
        get: operations["get_session_v1_sessions__session_id__get"];
        put?: never;
        post?: never;
        /** Delete a session and its sandbox */
        delete: operations["delete_session_v1_sessions__session_id__delete"];
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/sessions/{session_id}/metrics": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** What the session uses now */
        get: operations["session_metrics_v1_sessions__session_id__metrics_get"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/sessions/{session_id}/pause": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Save the state and end the interpreter */
        post: operations["pause_session_v1_sessions__session_id__pause_post"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/sessions/{session_id}/resume": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Bring the interpreter back with its state */
        post: operations["resume_session_v1_sessions__session_id__resume_post"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/sessions/{session_id}/fork": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** A new session with a copy of this one's files and state */
        post: operations["fork_session_v1_sessions__session_id__fork_post"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/sessions/{session_id}/archive": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The session as one archive (gzip tar, docs/sessions.md) */
        get: operations["session_archive_v1_sessions__session_id__archive_get"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/sessions/{session_id}/execute": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Run a cell in a session */
        post: operations["execute_in_session_v1_sessions__session_id__execute_post"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/sessions/{session_id}/interrupt": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Interrupt the running cell */
        post: operations["interrupt_v1_sessions__session_id__interrupt_post"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/sessions/{session_id}/files": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** List the workspace's files */
        get: operations["list_files_v1_sessions__session_id__files_get"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/sessions/{session_id}/files/{path}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Download a file (raw bytes) */
        get: operations["download_file_v1_sessions__session_id__files__path__get"];
        /** Upload a file (raw body) */
        put: operations["upload_file_v1_sessions__session_id__files__path__put"];
        post?: never;
        /** Delete a file */
        delete: operations["delete_file_v1_sessions__session_id__files__path__delete"];
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/sessions/{session_id}/notebook": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The session's history as a Jupyter notebook (.ipynb) */
        get: operations["notebook_v1_sessions__session_id__notebook_get"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/commands": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Run a shell command once in a fresh sandbox */
        post: operations["run_command_v1_commands_post"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/sessions/{session_id}/commands": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The session's shell commands */
        get: operations["list_commands_v1_sessions__session_id__commands_get"];
        put?: never;
        /** Run a shell command in a session */
        post: operations["session_command_v1_sessions__session_id__commands_post"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/sessions/{session_id}/commands/{command_id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** A command's state and output so far */
        get: operations["get_command_v1_sessions__session_id__commands__command_id__get"];
        put?: never;
        post?: never;
        /** Kill a command and what it started */
        delete: operations["kill_command_v1_sessions__session_id__commands__command_id__delete"];
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/sessions/{session_id}/commands/{command_id}/stdin": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Write to a background command's stdin */
        post: operations["command_stdin_v1_sessions__session_id__commands__command_id__stdin_post"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/environments": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The environments runs and sessions may name */
        get: operations["list_environments_v1_environments_get"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/models": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Models the agent endpoint serves (OpenAI format) */
        get: operations["models_v1_models_get"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/chat/completions": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** OpenAI-compatible chat completions with server-side code execution */
        post: operations["chat_completions_v1_chat_completions_post"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/healthz": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Health: 200 only while a run can be served now */
        get: operations["healthz_healthz_get"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/readyz": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Readiness (for load balancers): as /healthz */
        get: operations["readyz_readyz_get"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/livez": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Liveness: 200 while the process serves and its engine runs */
        get: operations["livez_livez_get"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/metrics": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Prometheus metrics */
        get: operations["metrics_metrics_get"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
};
export type webhooks = Record<string, never>;
export type components = {
    schemas: {
        /** BatchItem */
        BatchItem: {
            /** Code */
            code: string;
            /** Session Id */
            session_id?: string | null;
            /**
             * Timeout
             * @description Wall-clock seconds for this run.
             */
            timeout?: number | null;
            /**
             * Environment
             * @description For an item without a session: the environment to run in. With one, it must be the session's own (or absent).
             */
            environment?: string | null;
            /** @description As for /v1/execute; an item for a session has the session's network instead. */
            network?: components["schemas"]["NetworkRequest"] | null;
        };
        /** BatchRequest */
        BatchRequest: {
            /** Items */
            items: components["schemas"]["BatchItem"][];
            /**
             * Stream
             * @description Answer with Server-Sent Events: a `result` event per item (`{"index", "result"}`), in item order, each as soon as it and every item before it have finished, then `done` with the whole response.
             * @default false
             */
            stream: boolean;
        };
        /** BatchResponse */
        BatchResponse: {
            /** Results */
            results: components["schemas"]["ExecutionResult"][];
        };
        /**
         * ChatRequest
         * @description A chat-completions request (OpenAI's fields; unknown ones are ignored).
         */
        ChatRequest: {
            /** Model */
            model?: string | null;
            /** Messages */
            messages: {
                [key: string]: unknown;
            }[];
            /**
             * Stream
             * @default false
             */
            stream: boolean;
            /** Stream Options */
            stream_options?: {
                [key: string]: unknown;
            } | null;
            /** Tools */
            tools?: {
                [key: string]: unknown;
            }[] | null;
            /**
             * Session Id
             * @description sandlot: continue in this existing session (yours).
             */
            session_id?: string | null;
            /**
             * Keep Session
             * @description sandlot: keep the request's new session; its id is returned.
             * @default false
             */
            keep_session: boolean;
            /**
             * Max Steps
             * @description sandlot: fewer code steps than the server's maximum.
             */
            max_steps?: number | null;
        } & {
            [key: string]: unknown;
        };
        /** CommandList */
        CommandList: {
            /** Commands */
            commands: components["schemas"]["CommandResult"][];
        };
        /**
         * CommandResult
         * @description A shell command's outcome (or, while a background one runs, its state and output so far).
         */
        CommandResult: {
            /**
             * Id
             * @description cmd_...
             */
            id: string;
            /** Cmd */
            cmd: string;
            /**
             * Status
             * @description running; ok (exit 0); error (another exit code); timeout; memory; killed (DELETE, a signal, the sandbox ended, it could not start).
             * @enum {string}
             */
            status: "running" | "ok" | "error" | "timeout" | "memory" | "killed";
            /**
             * Exit Code
             * @description The shell's exit code; null while running or when a signal ended it.
             */
            exit_code?: number | null;
            /**
             * Stdout
             * @default
             */
            stdout: string;
            /**
             * Stderr
             * @default
             */
            stderr: string;
            /**
             * Duration Ms
             * @default 0
             */
            duration_ms: number;
            /**
             * Truncated
             * @description Output over the output_size limit was dropped (a background command keeps the most recent output, a foreground one the first).
             * @default false
             */
            truncated: boolean;
            /**
             * Background
             * @default false
             */
            background: boolean;
            /**
             * Error
             * @description Why the command ended without an exit code, for a person.
             */
            error?: string | null;
            /**
             * Network
             * @description Connections through the egress proxy (a foreground command in a sandbox with network).
             * @default []
             */
            network: components["schemas"]["NetworkConnection"][];
        };
        /** CommandStarted */
        CommandStarted: {
            /**
             * Id
             * @description cmd_...: GET, POST …/stdin and DELETE it under the session's /commands.
             */
            id: string;
        };
        /** CommandStdinRequest */
        CommandStdinRequest: {
            /**
             * Data
             * @description Text written to the command's stdin.
             */
            data: string;
            /**
             * Eof
             * @description Close its stdin afterwards.
             * @default false
             */
            eof: boolean;
        };
        /**
         * DisplayData
         * @description A rich object shown with ``display()``, or a matplotlib figure: a MIME bundle.
         */
        DisplayData: {
            /**
             * @description discriminator enum property added by openapi-typescript
             * @enum {string}
             */
            output_type: "display_data";
            /** Data */
            data: {
                [key: string]: unknown;
            };
            /**
             * Metadata
             * @default {}
             */
            metadata: {
                [key: string]: unknown;
            };
        };
        /** EnvironmentHealth */
        EnvironmentHealth: {
            /**
             * State
             * @description unused (never asked for yet: no process), failed (its zygote could not start; the next request tries again), up, restarting, backing_off, starting.
             */
            state: string;
            /** Pid */
            pid?: number | null;
            /**
             * Restarts
             * @default 0
             */
            restarts: number;
            /** Last Error */
            last_error?: string | null;
            /**
             * Pool Ready
             * @default 0
             */
            pool_ready: number;
            /**
             * Pool Target
             * @description Warm sandboxes its pool aims to keep now (it grows under bursts).
             * @default 0
             */
            pool_target: number;
        };
        /** EnvironmentInfo */
        EnvironmentInfo: {
            /** Name */
            name: string;
            /**
             * Python
             * @description Its Python version.
             */
            python: string;
            /**
             * Executable
             * @description The interpreter its zygote runs.
             */
            executable: string;
            /**
             * Preload
             * @description Modules every run starts with imported.
             */
            preload: string[];
            /**
             * Default
             * @description The environment a request without `environment` runs in.
             */
            default: boolean;
            /** Pool Size */
            pool_size: number;
            /**
             * Modules
             * @description Its module policy: `deny`, and `allow` (null: no allow list).
             */
            modules: {
                [key: string]: string[] | null;
            };
            /**
             * Distributions
             * @description With ?distributions=true: what is installed, [{name, version}].
             */
            distributions?: {
                [key: string]: string;
            }[] | null;
        };
        /** EnvironmentList */
        EnvironmentList: {
            /** Environments */
            environments: components["schemas"]["EnvironmentInfo"][];
        };
        /** ErrorBody */
        ErrorBody: {
            /**
             * Type
             * @description A machine word: invalid_request, unauthorized, not_found, too_large, capacity...
             */
            type: string;
            /**
             * Message
             * @description What went wrong, for a person.
             */
            message: string;
        };
        /**
         * ErrorOutput
         * @description The exception that ended the cell.
         */
        ErrorOutput: {
            /**
             * @description discriminator enum property added by openapi-typescript
             * @enum {string}
             */
            output_type: "error";
            /** Ename */
            ename: string;
            /** Evalue */
            evalue: string;
            /** Traceback */
            traceback: string[];
        };
        /**
         * ErrorResponse
         * @description Every error response, whatever its status.
         */
        ErrorResponse: {
            error: components["schemas"]["ErrorBody"];
        };
        /** ExecuteRequest */
        ExecuteRequest: {
            /**
             * Code
             * @description Python source to run.
             */
            code: string;
            /**
             * Timeout
             * @description Wall-clock seconds for this run.
             */
            timeout?: number | null;
            /**
             * Files
             * @description Files placed in the workspace before the run.
             */
            files?: components["schemas"]["FileUpload"][] | null;
            /**
             * Env
             * @description Environment variables for the run.
             */
            env?: {
                [key: string]: string;
            } | null;
            /**
             * Stream
             * @description Answer with Server-Sent Events instead of one JSON result.
             * @default false
             */
            stream: boolean;
            /**
             * Tools
             * @description Host tools the code may call (default: all registered).
             */
            tools?: string[] | null;
            limits?: components["schemas"]["LimitsOverride"] | null;
            /**
             * Environment
             * @description The environment to run in (GET /v1/environments; default: the server's default one).
             */
            environment?: string | null;
            /** @description Network through the egress proxy (default: none). */
            network?: components["schemas"]["NetworkRequest"] | null;
        };
        /**
         * ExecuteResult
         * @description The value of the cell's trailing expression, as a MIME bundle.
         */
        ExecuteResult: {
            /**
             * @description discriminator enum property added by openapi-typescript
             * @enum {string}
             */
            output_type: "execute_result";
            /** Execution Count */
            execution_count: number | null;
            /** Data */
            data: {
                [key: string]: unknown;
            };
            /**
             * Metadata
             * @default {}
             */
            metadata: {
                [key: string]: unknown;
            };
        };
        /**
         * ExecutionError
         * @description The exception user code raised: data, not a Python exception of ours.
         */
        ExecutionError: {
            /** Ename */
            ename: string;
            /** Evalue */
            evalue: string;
            /** Traceback */
            traceback: string[];
        };
        /**
         * ExecutionResult
         * @description What every run returns (see API.md, "Execution result").
         */
        ExecutionResult: {
            /** Id */
            id: string;
            /**
             * Status
             * @enum {string}
             */
            status: "ok" | "error" | "timeout" | "memory" | "killed";
            /**
             * Stdout
             * @default
             */
            stdout: string;
            /**
             * Stderr
             * @default
             */
            stderr: string;
            /**
             * Outputs
             * @default []
             */
            outputs: (components["schemas"]["StreamOutput"] | components["schemas"]["DisplayData"] | components["schemas"]["ExecuteResult"] | components["schemas"]["ErrorOutput"])[];
            error?: components["schemas"]["ExecutionError"] | null;
            /** Execution Count */
            execution_count?: number | null;
            /**
             * Duration Ms
             * @default 0
             */
            duration_ms: number;
            /**
             * @default {
             *       "cpu_ms": 0
             *     }
             */
            usage: components["schemas"]["Usage"];
            /**
             * Truncated
             * @default false
             */
            truncated: boolean;
            /**
             * Restarted
             * @default false
             */
            restarted: boolean;
            /** @description On the first result after a session's state was restored (a resume, a restart): the names that came back and those that did not, with why. */
            resumed?: components["schemas"]["Resumed"] | null;
            /**
             * Tool Calls
             * @default []
             */
            tool_calls: components["schemas"]["ToolCallRecord"][];
            /**
             * Network
             * @description Connections through the egress proxy, allowed or not (only for a run or session with `network`).
             * @default []
             */
            network: components["schemas"]["NetworkConnection"][];
        };
        /** FileEntry */
        FileEntry: {
            /** Path */
            path: string;
            /** Size */
            size: number;
            /** Modified At */
            modified_at: string;
        };
        /** FileList */
        FileList: {
            /** Files */
            files: components["schemas"]["FileEntry"][];
        };
        /** FileUpload */
        FileUpload: {
            /**
             * Path
             * @description Relative path inside the workspace.
             */
            path: string;
            /**
             * Content
             * @description The file's bytes, base64-encoded.
             */
            content: string;
        };
        /** Health */
        Health: {
            /**
             * Status
             * @description ok, unavailable or draining.
             */
            status: string;
            /**
             * Reasons
             * @description Why a run cannot be served now (empty when ok).
             */
            reasons?: string[];
            /** Isolation */
            isolation?: string | null;
            /**
             * Sandboxes Alive
             * @default 0
             */
            sandboxes_alive: number;
            /**
             * Sessions
             * @default 0
             */
            sessions: number;
            /**
             * Pool Ready
             * @description Warm sandboxes waiting: the default pool's and the lean zygote's.
             * @default 0
             */
            pool_ready: number;
            zygote?: components["schemas"]["ZygoteHealth"] | null;
            /**
             * Environments
             * @description The named environments' zygotes, by name (a dead one there does not make the server unhealthy: that environment's requests wait for it, or get 503).
             */
            environments?: {
                [key: string]: components["schemas"]["EnvironmentHealth"];
            } | null;
            /** @description The lean zygote (it preloads nothing) that serves the one-shot runs whose code imports only the standard library; absent when there is none. A dead one does not make the server unhealthy: those runs go to the default zygote meanwhile. */
            lean?: components["schemas"]["EnvironmentHealth"] | null;
            /**
             * Version
             * @default
             */
            version: string;
        };
        /**
         * LimitsOverride
         * @description Limits for this run or session instead of the server's defaults, up to its maximums (sandlot extension).
         */
        LimitsOverride: {
            /**
             * Cpu Time
             * @description CPU seconds.
             */
            cpu_time?: number | null;
            /**
             * Memory
             * @description Bytes of memory.
             */
            memory?: number | null;
            /**
             * Pids
             * @description Processes and threads at once.
             */
            pids?: number | null;
            /**
             * Cpus
             * @description CPUs the sandbox may use at once (a cgroup quota; 0.5 is half a CPU).
             */
            cpus?: number | null;
            /**
             * File Size
             * @description Largest file, bytes.
             */
            file_size?: number | null;
            /** Open Files */
            open_files?: number | null;
            /** Address Space */
            address_space?: number | null;
            /**
             * Workspace Size
             * @description Bytes of files in /workspace.
             */
            workspace_size?: number | null;
            /**
             * Output Size
             * @description Bytes of stdout+stderr kept.
             */
            output_size?: number | null;
            /** Rich Output Size */
            rich_output_size?: number | null;
        };
        /**
         * LostName
         * @description A name a session's saved state does not hold, and why (it could not be pickled, the snapshot was over its cap).
         */
        LostName: {
            /** Name */
            name: string;
            /** Reason */
            reason: string;
        };
        /**
         * NetworkConnection
         * @description One connection the run's code asked the egress proxy for (docs/egress.md).
         */
        NetworkConnection: {
            /**
             * Host
             * @description The host as the sandbox named it (a name or an address).
             */
            host: string;
            /** Port */
            port: number;
            /** Allowed */
            allowed: boolean;
            /**
             * Method
             * @description CONNECT (a tunnel, HTTPS) or the plain-HTTP request's method.
             * @default
             */
            method: string;
            /**
             * Bytes Sent
             * @description Bytes from the sandbox to the destination.
             * @default 0
             */
            bytes_sent: number;
            /**
             * Bytes Received
             * @description Bytes from the destination to the sandbox.
             * @default 0
             */
            bytes_received: number;
            /**
             * Reason
             * @description Why it was refused or ended early.
             */
            reason?: string | null;
            /**
             * Cached
             * @description Answered from the host's wheel cache, without a download.
             * @default false
             */
            cached: boolean;
        };
        /**
         * NetworkRequest
         * @description Network for this run or session, through the egress proxy (docs/egress.md): off unless asked for.
         */
        NetworkRequest: {
            /**
             * Allow
             * @description Destinations (domains, `*.domain`, `host:port`, addresses, CIDRs), each within what the server allows (else 400). Unset: all of that.
             */
            allow?: string[] | null;
        };
        /** OneShotCommandRequest */
        OneShotCommandRequest: {
            /**
             * Cmd
             * @description The command line, run by /bin/sh -c.
             */
            cmd: string;
            /**
             * Cwd
             * @description Directory relative to the workspace (default: the workspace).
             */
            cwd?: string | null;
            /**
             * Env
             * @description Environment variables added for this command.
             */
            env?: {
                [key: string]: string;
            } | null;
            /**
             * Timeout
             * @description Wall-clock seconds; then it is killed (status timeout). A background command has no limit without one.
             */
            timeout?: number | null;
            /**
             * Stdin
             * @description Text given to the command's stdin, then end of file.
             */
            stdin?: string | null;
            /**
             * Stream
             * @description Answer with Server-Sent Events: stdout, stderr, then done.
             * @default false
             */
            stream: boolean;
            /**
             * Files
             * @description Files placed in the workspace before the command.
             */
            files?: components["schemas"]["FileUpload"][] | null;
            limits?: components["schemas"]["LimitsOverride"] | null;
            /** @description Network through the egress proxy (default: none). */
            network?: components["schemas"]["NetworkRequest"] | null;
        };
        /** Resumed */
        Resumed: {
            /** Restored */
            restored: string[];
            /** Lost */
            lost: components["schemas"]["LostName"][];
        };
        /** SessionCommandRequest */
        SessionCommandRequest: {
            /**
             * Cmd
             * @description The command line, run by /bin/sh -c.
             */
            cmd: string;
            /**
             * Cwd
             * @description Directory relative to the workspace (default: the workspace).
             */
            cwd?: string | null;
            /**
             * Env
             * @description Environment variables added for this command.
             */
            env?: {
                [key: string]: string;
            } | null;
            /**
             * Timeout
             * @description Wall-clock seconds; then it is killed (status timeout). A background command has no limit without one.
             */
            timeout?: number | null;
            /**
             * Stdin
             * @description Text given to the command's stdin, then end of file.
             */
            stdin?: string | null;
            /**
             * Stream
             * @description Answer with Server-Sent Events: stdout, stderr, then done.
             * @default false
             */
            stream: boolean;
            /**
             * Background
             * @description Start it and answer 201 with its id at once; its stdin stays open.
             * @default false
             */
            background: boolean;
        };
        /** SessionCreateRequest */
        SessionCreateRequest: {
            /**
             * Timeout
             * @description Wall-clock seconds for this run.
             */
            timeout?: number | null;
            /**
             * Idle Timeout
             * @description Seconds the session may sit unused.
             */
            idle_timeout?: number | null;
            /** Env */
            env?: {
                [key: string]: string;
            } | null;
            /**
             * Tools
             * @description Host tools the session's code may call (default: all).
             */
            tools?: string[] | null;
            limits?: components["schemas"]["LimitsOverride"] | null;
            /**
             * Environment
             * @description The environment to run in (GET /v1/environments; default: the server's default one).
             */
            environment?: string | null;
            /** @description Network for every cell and command of the session (default: none). */
            network?: components["schemas"]["NetworkRequest"] | null;
        };
        /** SessionExecuteRequest */
        SessionExecuteRequest: {
            /** Code */
            code: string;
            /**
             * Timeout
             * @description Wall-clock seconds for this run.
             */
            timeout?: number | null;
            /**
             * Stream
             * @default false
             */
            stream: boolean;
        };
        /** SessionInfo */
        SessionInfo: {
            /** Id */
            id: string;
            /** Created At */
            created_at: string;
            /**
             * Expires At
             * @description When the session changes state if unused: a running one is paused (its idle_timeout), a paused one deleted (the server's paused_ttl).
             */
            expires_at: string;
            /** Execution Count */
            execution_count: number;
            /**
             * State
             * @description running: it may have an interpreter; paused: its state is saved and no process is left (files stay reachable).
             * @enum {string}
             */
            state: "running" | "paused";
            /** Last Active At */
            last_active_at: string;
            /**
             * Environment
             * @description The environment its interpreters run in.
             * @default default
             */
            environment: string;
            /** @description The session's egress policy, when it was made with network. */
            network?: components["schemas"]["SessionNetwork"] | null;
        };
        /** SessionList */
        SessionList: {
            /** Sessions */
            sessions: components["schemas"]["SessionInfo"][];
        };
        /** SessionMetrics */
        SessionMetrics: {
            /**
             * Running
             * @description A cell is running now.
             */
            running: boolean;
            /**
             * Interpreter
             * @description The session has a live interpreter (false after a kill, until its next cell).
             */
            interpreter: boolean;
            /**
             * Cpu Ms
             * @description CPU its interpreter and every process in its sandbox used so far.
             */
            cpu_ms: number;
            /**
             * Memory Bytes
             * @description Memory in use now (the cgroup's count; RSS in degraded mode).
             */
            memory_bytes: number | null;
            /**
             * Peak Memory Bytes
             * @description The most memory in use since the current cell began.
             */
            peak_memory_bytes: number | null;
            /**
             * Pids
             * @description Processes and threads in the sandbox now.
             */
            pids: number | null;
            /**
             * Workspace Bytes
             * @description Bytes of files in /workspace.
             */
            workspace_bytes: number;
        };
        /** SessionNetwork */
        SessionNetwork: {
            /**
             * Allow
             * @description The destinations its code may reach through the egress proxy.
             */
            allow: string[];
            /**
             * Dropped
             * @description Destinations it was granted that this server no longer allows (the operator's list narrowed, or egress is off, since it was made); they come back if the operator allows them again.
             * @default []
             */
            dropped: string[];
        };
        /**
         * StreamOutput
         * @description Text written to stdout or stderr (consecutive writes to one stream are merged).
         */
        StreamOutput: {
            /**
             * @description discriminator enum property added by openapi-typescript
             * @enum {string}
             */
            output_type: "stream";
            /**
             * Name
             * @enum {string}
             */
            name: "stdout" | "stderr";
            /** Text */
            text: string;
        };
        /**
         * ToolCallRecord
         * @description One call the run's code made to a host tool.
         */
        ToolCallRecord: {
            /** Name */
            name: string;
            /** Arguments */
            arguments: {
                [key: string]: unknown;
            };
            /** Duration Ms */
            duration_ms: number;
            /**
             * Status
             * @description ok, invalid_arguments, unknown_tool, tool_error, timeout or limit
             */
            status: string;
            /** Error */
            error?: string | null;
        };
        /**
         * Usage
         * @description Resources a run used: CPU time and peak memory (the cgroup's, where there is one).
         */
        Usage: {
            /**
             * Cpu Ms
             * @default 0
             */
            cpu_ms: number;
            /** Peak Memory Bytes */
            peak_memory_bytes?: number | null;
        };
        /** ZygoteHealth */
        ZygoteHealth: {
            /**
             * State
             * @description up, restarting, backing_off, starting or stopped.
             */
            state: string;
            /** Pid */
            pid?: number | null;
            /**
             * Restarts
             * @description Zygotes started to replace one that died or stalled.
             * @default 0
             */
            restarts: number;
            /**
             * Consecutive Failures
             * @default 0
             */
            consecutive_failures: number;
            /**
             * Retry In
             * @description Seconds until the next restart attempt while backing off.
             */
            retry_in?: number | null;
            /** Last Error */
            last_error?: string | null;
        };
    };
    responses: never;
    parameters: never;
    requestBodies: never;
    headers: never;
    pathItems: never;
};
export type $defs = Record<string, never>;
export interface operations {
    execute_v1_execute_post: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["ExecuteRequest"];
            };
        };
        responses: {
            /** @description With `stream: true` or `Accept: text/event-stream`: events stdout, stderr, output, error, done. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ExecutionResult"];
                    "text/event-stream": {
                        /** @enum {string} */
                        event: "stdout" | "stderr" | "output" | "error" | "done";
                        /** @description JSON; for `done`, the complete execution result. */
                        data: string;
                    };
                };
            };
            /** @description Invalid request: bad JSON, missing or wrongly typed fields, a bad path. */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Missing or wrong API key. */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Code or upload over its limit. */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description No capacity or quota left; see Retry-After. */
            429: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description The server is shutting down. */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
        };
    };
    batch_v1_batch_post: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["BatchRequest"];
            };
        };
        responses: {
            /** @description With `stream: true` or `Accept: text/event-stream`: a `result` event per item in item order, then `done`. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["BatchResponse"];
                    "text/event-stream": {
                        /** @enum {string} */
                        event: "result" | "error" | "done";
                        /** @description JSON: for `result`, `{"index", "result"}`; for `done`, the whole batch response; for `error`, an error body. */
                        data: string;
                    };
                };
            };
            /** @description Invalid request: bad JSON, missing or wrongly typed fields, a bad path. */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Missing or wrong API key. */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description No such session or file. */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Code or upload over its limit. */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description No capacity or quota left; see Retry-After. */
            429: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description The server is shutting down. */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
        };
    };
    list_sessions_v1_sessions_get: {
        parameters: {
            query?: {
                /** @description Only the sessions in this state. */
                state?: ("running" | "paused") | null;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["SessionList"];
                };
            };
            /** @description Invalid request: bad JSON, missing or wrongly typed fields, a bad path. */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Missing or wrong API key. */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description The server is shutting down. */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
        };
    };
    create_session_v1_sessions_post: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: {
            content: {
                "application/json": components["schemas"]["SessionCreateRequest"] | null;
            };
        };
        responses: {
            /** @description Successful Response */
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["SessionInfo"];
                };
            };
            /** @description Invalid request: bad JSON, missing or wrongly typed fields, a bad path. */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Missing or wrong API key. */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description No capacity or quota left; see Retry-After. */
            429: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description The server is shutting down. */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
        };
    };
    import_session_v1_sessions_import_post: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** @description The archive (gzip tar) as raw bytes. */
        requestBody: {
            content: {
                "application/octet-stream": string;
            };
        };
        responses: {
            /** @description Successful Response */
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["SessionInfo"];
                };
            };
            /** @description Invalid request: bad JSON, missing or wrongly typed fields, a bad path. */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Missing or wrong API key. */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Code or upload over its limit. */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description No capacity or quota left; see Retry-After. */
            429: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description The server is shutting down. */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
        };
    };
    get_session_v1_sessions__session_id__get: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                session_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["SessionInfo"];
                };
            };
            /** @description Invalid request. */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Missing or wrong API key. */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description No such session or file. */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description The server is shutting down. */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
        };
    };
    delete_session_v1_sessions__session_id__delete: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                session_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            204: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description Invalid request. */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Missing or wrong API key. */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description No such session or file. */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description The server is shutting down. */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
        };
    };
    session_metrics_v1_sessions__session_id__metrics_get: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                session_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["SessionMetrics"];
                };
            };
            /** @description Invalid request. */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Missing or wrong API key. */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description No such session or file. */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description The server is shutting down. */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
        };
    };
    pause_session_v1_sessions__session_id__pause_post: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                session_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["SessionInfo"];
                };
            };
            /** @description Invalid request. */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Missing or wrong API key. */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description No such session or file. */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description The server is shutting down. */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
        };
    };
    resume_session_v1_sessions__session_id__resume_post: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                session_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["SessionInfo"];
                };
            };
            /** @description Invalid request. */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Missing or wrong API key. */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description No such session or file. */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description No capacity or quota left; see Retry-After. */
            429: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description The server is shutting down. */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
        };
    };
    fork_session_v1_sessions__session_id__fork_post: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                session_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["SessionInfo"];
                };
            };
            /** @description Invalid request. */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Missing or wrong API key. */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description No such session or file. */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description No capacity or quota left; see Retry-After. */
            429: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description The server is shutting down. */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
        };
    };
    session_archive_v1_sessions__session_id__archive_get: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                session_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The archive. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/gzip": string;
                };
            };
            /** @description Invalid request. */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Missing or wrong API key. */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description No such session or file. */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description The server is shutting down. */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
        };
    };
    execute_in_session_v1_sessions__session_id__execute_post: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                session_id: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["SessionExecuteRequest"];
            };
        };
        responses: {
            /** @description With `stream: true` or `Accept: text/event-stream`: events stdout, stderr, output, error, done. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ExecutionResult"];
                    "text/event-stream": {
                        /** @enum {string} */
                        event: "stdout" | "stderr" | "output" | "error" | "done";
                        /** @description JSON; for `done`, the complete execution result. */
                        data: string;
                    };
                };
            };
            /** @description Invalid request: bad JSON, missing or wrongly typed fields, a bad path. */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Missing or wrong API key. */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description No such session or file. */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Code or upload over its limit. */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description No capacity or quota left; see Retry-After. */
            429: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description The server is shutting down. */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
        };
    };
    interrupt_v1_sessions__session_id__interrupt_post: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                session_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            204: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description Invalid request. */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Missing or wrong API key. */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description No such session or file. */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description The server is shutting down. */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
        };
    };
    list_files_v1_sessions__session_id__files_get: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                session_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["FileList"];
                };
            };
            /** @description Invalid request. */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Missing or wrong API key. */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description No such session or file. */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description The server is shutting down. */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
        };
    };
    download_file_v1_sessions__session_id__files__path__get: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                path: string;
                session_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The file's bytes. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/octet-stream": string;
                };
            };
            /** @description Invalid request: bad JSON, missing or wrongly typed fields, a bad path. */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Missing or wrong API key. */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description No such session or file. */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Code or upload over its limit. */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description The server is shutting down. */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
        };
    };
    upload_file_v1_sessions__session_id__files__path__put: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                path: string;
                session_id: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/octet-stream": string;
            };
        };
        responses: {
            /** @description Stored; no body. */
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description Invalid request: bad JSON, missing or wrongly typed fields, a bad path. */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Missing or wrong API key. */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description No such session or file. */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Code or upload over its limit. */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description The server is shutting down. */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
        };
    };
    delete_file_v1_sessions__session_id__files__path__delete: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                path: string;
                session_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            204: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description Invalid request: bad JSON, missing or wrongly typed fields, a bad path. */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Missing or wrong API key. */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description No such session or file. */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Code or upload over its limit. */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description The server is shutting down. */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
        };
    };
    notebook_v1_sessions__session_id__notebook_get: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                session_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description nbformat 4 JSON. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": unknown;
                    "application/x-ipynb+json": Record<string, never>;
                };
            };
            /** @description Invalid request. */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Missing or wrong API key. */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description No such session or file. */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description The server is shutting down. */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
        };
    };
    run_command_v1_commands_post: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["OneShotCommandRequest"];
            };
        };
        responses: {
            /** @description With `stream: true` or `Accept: text/event-stream`: events stdout, stderr, done. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["CommandResult"];
                    "text/event-stream": {
                        /** @enum {string} */
                        event: "stdout" | "stderr" | "error" | "done";
                        /** @description JSON; for `done`, the complete command result. */
                        data: string;
                    };
                };
            };
            /** @description Invalid request: bad JSON, missing or wrongly typed fields, a bad path. */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Missing or wrong API key. */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Code or upload over its limit. */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description No capacity or quota left; see Retry-After. */
            429: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description The server is shutting down. */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
        };
    };
    list_commands_v1_sessions__session_id__commands_get: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                session_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["CommandList"];
                };
            };
            /** @description Invalid request. */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Missing or wrong API key. */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description No such session or file. */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description The server is shutting down. */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
        };
    };
    session_command_v1_sessions__session_id__commands_post: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                session_id: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["SessionCommandRequest"];
            };
        };
        responses: {
            /** @description With `stream: true` or `Accept: text/event-stream`: events stdout, stderr, done. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["CommandResult"];
                    "text/event-stream": {
                        /** @enum {string} */
                        event: "stdout" | "stderr" | "error" | "done";
                        /** @description JSON; for `done`, the complete command result. */
                        data: string;
                    };
                };
            };
            /** @description background: started. */
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["CommandStarted"];
                };
            };
            /** @description Invalid request: bad JSON, missing or wrongly typed fields, a bad path. */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Missing or wrong API key. */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description No such session or file. */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Code or upload over its limit. */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description No capacity or quota left; see Retry-After. */
            429: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description The server is shutting down. */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
        };
    };
    get_command_v1_sessions__session_id__commands__command_id__get: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                command_id: string;
                session_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["CommandResult"];
                };
            };
            /** @description Invalid request. */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Missing or wrong API key. */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description No such session or file. */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description The server is shutting down. */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
        };
    };
    kill_command_v1_sessions__session_id__commands__command_id__delete: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                command_id: string;
                session_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["CommandResult"];
                };
            };
            /** @description Invalid request. */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Missing or wrong API key. */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description No such session or file. */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description The server is shutting down. */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
        };
    };
    command_stdin_v1_sessions__session_id__commands__command_id__stdin_post: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                command_id: string;
                session_id: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["CommandStdinRequest"];
            };
        };
        responses: {
            /** @description Successful Response */
            204: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description Invalid request: bad JSON, missing or wrongly typed fields, a bad path. */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Missing or wrong API key. */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description No such session or file. */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Code or upload over its limit. */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description The server is shutting down. */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
        };
    };
    list_environments_v1_environments_get: {
        parameters: {
            query?: {
                /** @description Also list what each environment has installed (asks each interpreter: slower). */
                distributions?: boolean;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["EnvironmentList"];
                };
            };
            /** @description Invalid request. */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Missing or wrong API key. */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description The server is shutting down. */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
        };
    };
    models_v1_models_get: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": unknown;
                };
            };
            /** @description Missing or wrong API key. */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description The server is shutting down. */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
        };
    };
    chat_completions_v1_chat_completions_post: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["ChatRequest"];
            };
        };
        responses: {
            /** @description A chat.completion, or with `stream: true` chat.completion.chunk events (text/event-stream). */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": Record<string, never>;
                    "text/event-stream": string;
                };
            };
            /** @description Invalid request: bad JSON, missing or wrongly typed fields, a bad path. */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description Missing or wrong API key. */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description No such session or file. */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description No capacity or quota left; see Retry-After. */
            429: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description The upstream model failed. */
            502: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description The server is shutting down. */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            /** @description The upstream model timed out. */
            504: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
        };
    };
    healthz_healthz_get: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Health"];
                };
            };
            /** @description A run cannot be served now. */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Health"];
                };
            };
        };
    };
    readyz_readyz_get: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Health"];
                };
            };
            /** @description A run cannot be served now. */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Health"];
                };
            };
        };
    };
    livez_livez_get: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": unknown;
                };
            };
            /** @description The engine has stopped. */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
        };
    };
    metrics_metrics_get: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Text format. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "text/plain": string;
                };
            };
        };
    };
}
