from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JobSpec(_message.Message):
    __slots__ = ("name", "script", "argv", "workdir", "environment", "export_mode", "output", "error", "input", "open_mode", "time_limit", "nodes_min", "nodes_max", "ntasks", "ntasks_per_node", "cpus_per_task", "mem_mb", "mem_whole_node", "mem_per_cpu_mb", "gpus", "gpus_per_node", "gpus_per_task", "gpu_type", "partitions", "hold", "exclusive", "nodelist", "exclude", "requeue", "comment", "submit_host", "submit_dir", "nice", "extra", "wrapped", "shell")
    class EnvironmentEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class ExtraEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    SCRIPT_FIELD_NUMBER: _ClassVar[int]
    ARGV_FIELD_NUMBER: _ClassVar[int]
    WORKDIR_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    EXPORT_MODE_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    OPEN_MODE_FIELD_NUMBER: _ClassVar[int]
    TIME_LIMIT_FIELD_NUMBER: _ClassVar[int]
    NODES_MIN_FIELD_NUMBER: _ClassVar[int]
    NODES_MAX_FIELD_NUMBER: _ClassVar[int]
    NTASKS_FIELD_NUMBER: _ClassVar[int]
    NTASKS_PER_NODE_FIELD_NUMBER: _ClassVar[int]
    CPUS_PER_TASK_FIELD_NUMBER: _ClassVar[int]
    MEM_MB_FIELD_NUMBER: _ClassVar[int]
    MEM_WHOLE_NODE_FIELD_NUMBER: _ClassVar[int]
    MEM_PER_CPU_MB_FIELD_NUMBER: _ClassVar[int]
    GPUS_FIELD_NUMBER: _ClassVar[int]
    GPUS_PER_NODE_FIELD_NUMBER: _ClassVar[int]
    GPUS_PER_TASK_FIELD_NUMBER: _ClassVar[int]
    GPU_TYPE_FIELD_NUMBER: _ClassVar[int]
    PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    HOLD_FIELD_NUMBER: _ClassVar[int]
    EXCLUSIVE_FIELD_NUMBER: _ClassVar[int]
    NODELIST_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_FIELD_NUMBER: _ClassVar[int]
    REQUEUE_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    SUBMIT_HOST_FIELD_NUMBER: _ClassVar[int]
    SUBMIT_DIR_FIELD_NUMBER: _ClassVar[int]
    NICE_FIELD_NUMBER: _ClassVar[int]
    EXTRA_FIELD_NUMBER: _ClassVar[int]
    WRAPPED_FIELD_NUMBER: _ClassVar[int]
    SHELL_FIELD_NUMBER: _ClassVar[int]
    name: str
    script: str
    argv: _containers.RepeatedScalarFieldContainer[str]
    workdir: str
    environment: _containers.ScalarMap[str, str]
    export_mode: str
    output: str
    error: str
    input: str
    open_mode: str
    time_limit: int
    nodes_min: int
    nodes_max: int
    ntasks: int
    ntasks_per_node: int
    cpus_per_task: int
    mem_mb: int
    mem_whole_node: bool
    mem_per_cpu_mb: int
    gpus: int
    gpus_per_node: int
    gpus_per_task: int
    gpu_type: str
    partitions: _containers.RepeatedScalarFieldContainer[str]
    hold: bool
    exclusive: bool
    nodelist: str
    exclude: str
    requeue: int
    comment: str
    submit_host: str
    submit_dir: str
    nice: int
    extra: _containers.ScalarMap[str, str]
    wrapped: bool
    shell: str
    def __init__(self, name: _Optional[str] = ..., script: _Optional[str] = ..., argv: _Optional[_Iterable[str]] = ..., workdir: _Optional[str] = ..., environment: _Optional[_Mapping[str, str]] = ..., export_mode: _Optional[str] = ..., output: _Optional[str] = ..., error: _Optional[str] = ..., input: _Optional[str] = ..., open_mode: _Optional[str] = ..., time_limit: _Optional[int] = ..., nodes_min: _Optional[int] = ..., nodes_max: _Optional[int] = ..., ntasks: _Optional[int] = ..., ntasks_per_node: _Optional[int] = ..., cpus_per_task: _Optional[int] = ..., mem_mb: _Optional[int] = ..., mem_whole_node: _Optional[bool] = ..., mem_per_cpu_mb: _Optional[int] = ..., gpus: _Optional[int] = ..., gpus_per_node: _Optional[int] = ..., gpus_per_task: _Optional[int] = ..., gpu_type: _Optional[str] = ..., partitions: _Optional[_Iterable[str]] = ..., hold: _Optional[bool] = ..., exclusive: _Optional[bool] = ..., nodelist: _Optional[str] = ..., exclude: _Optional[str] = ..., requeue: _Optional[int] = ..., comment: _Optional[str] = ..., submit_host: _Optional[str] = ..., submit_dir: _Optional[str] = ..., nice: _Optional[int] = ..., extra: _Optional[_Mapping[str, str]] = ..., wrapped: _Optional[bool] = ..., shell: _Optional[str] = ...) -> None: ...

class JobInfo(_message.Message):
    __slots__ = ("sched_nodes", "job_id", "name", "user", "uid", "gid", "group", "state", "reason", "partition", "submit_time", "start_time", "end_time", "time_limit", "nodes", "num_nodes", "num_cpus", "num_tasks", "mem_mb", "gpus", "exit_code", "exit_signal", "restart_count", "priority", "spec", "stdout_path", "stderr_path", "gpu_alloc", "batch_host", "now", "attempts", "last_failure", "dependency", "array_job_id", "array_task_id", "array_task_str", "array_max_tasks", "eligible_time", "begin_time", "account", "qos", "nice", "limit", "preempt_count", "factors")
    SCHED_NODES_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    UID_FIELD_NUMBER: _ClassVar[int]
    GID_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    SUBMIT_TIME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    TIME_LIMIT_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    NUM_NODES_FIELD_NUMBER: _ClassVar[int]
    NUM_CPUS_FIELD_NUMBER: _ClassVar[int]
    NUM_TASKS_FIELD_NUMBER: _ClassVar[int]
    MEM_MB_FIELD_NUMBER: _ClassVar[int]
    GPUS_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    EXIT_SIGNAL_FIELD_NUMBER: _ClassVar[int]
    RESTART_COUNT_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    STDOUT_PATH_FIELD_NUMBER: _ClassVar[int]
    STDERR_PATH_FIELD_NUMBER: _ClassVar[int]
    GPU_ALLOC_FIELD_NUMBER: _ClassVar[int]
    BATCH_HOST_FIELD_NUMBER: _ClassVar[int]
    NOW_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    LAST_FAILURE_FIELD_NUMBER: _ClassVar[int]
    DEPENDENCY_FIELD_NUMBER: _ClassVar[int]
    ARRAY_JOB_ID_FIELD_NUMBER: _ClassVar[int]
    ARRAY_TASK_ID_FIELD_NUMBER: _ClassVar[int]
    ARRAY_TASK_STR_FIELD_NUMBER: _ClassVar[int]
    ARRAY_MAX_TASKS_FIELD_NUMBER: _ClassVar[int]
    ELIGIBLE_TIME_FIELD_NUMBER: _ClassVar[int]
    BEGIN_TIME_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    QOS_FIELD_NUMBER: _ClassVar[int]
    NICE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    PREEMPT_COUNT_FIELD_NUMBER: _ClassVar[int]
    FACTORS_FIELD_NUMBER: _ClassVar[int]
    sched_nodes: str
    job_id: int
    name: str
    user: str
    uid: int
    gid: int
    group: str
    state: str
    reason: str
    partition: str
    submit_time: float
    start_time: float
    end_time: float
    time_limit: int
    nodes: _containers.RepeatedScalarFieldContainer[str]
    num_nodes: int
    num_cpus: int
    num_tasks: int
    mem_mb: int
    gpus: int
    exit_code: int
    exit_signal: int
    restart_count: int
    priority: int
    spec: JobSpec
    stdout_path: str
    stderr_path: str
    gpu_alloc: _containers.RepeatedCompositeFieldContainer[NodeGpus]
    batch_host: str
    now: float
    attempts: _containers.RepeatedCompositeFieldContainer[AttemptInfo]
    last_failure: str
    dependency: str
    array_job_id: int
    array_task_id: int
    array_task_str: str
    array_max_tasks: int
    eligible_time: float
    begin_time: float
    account: str
    qos: str
    nice: int
    limit: str
    preempt_count: int
    factors: JobPriority
    def __init__(self, sched_nodes: _Optional[str] = ..., job_id: _Optional[int] = ..., name: _Optional[str] = ..., user: _Optional[str] = ..., uid: _Optional[int] = ..., gid: _Optional[int] = ..., group: _Optional[str] = ..., state: _Optional[str] = ..., reason: _Optional[str] = ..., partition: _Optional[str] = ..., submit_time: _Optional[float] = ..., start_time: _Optional[float] = ..., end_time: _Optional[float] = ..., time_limit: _Optional[int] = ..., nodes: _Optional[_Iterable[str]] = ..., num_nodes: _Optional[int] = ..., num_cpus: _Optional[int] = ..., num_tasks: _Optional[int] = ..., mem_mb: _Optional[int] = ..., gpus: _Optional[int] = ..., exit_code: _Optional[int] = ..., exit_signal: _Optional[int] = ..., restart_count: _Optional[int] = ..., priority: _Optional[int] = ..., spec: _Optional[_Union[JobSpec, _Mapping]] = ..., stdout_path: _Optional[str] = ..., stderr_path: _Optional[str] = ..., gpu_alloc: _Optional[_Iterable[_Union[NodeGpus, _Mapping]]] = ..., batch_host: _Optional[str] = ..., now: _Optional[float] = ..., attempts: _Optional[_Iterable[_Union[AttemptInfo, _Mapping]]] = ..., last_failure: _Optional[str] = ..., dependency: _Optional[str] = ..., array_job_id: _Optional[int] = ..., array_task_id: _Optional[int] = ..., array_task_str: _Optional[str] = ..., array_max_tasks: _Optional[int] = ..., eligible_time: _Optional[float] = ..., begin_time: _Optional[float] = ..., account: _Optional[str] = ..., qos: _Optional[str] = ..., nice: _Optional[int] = ..., limit: _Optional[str] = ..., preempt_count: _Optional[int] = ..., factors: _Optional[_Union[JobPriority, _Mapping]] = ...) -> None: ...

class AttemptInfo(_message.Message):
    __slots__ = ("attempt", "nodes", "start_time", "end_time", "ended")
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    ENDED_FIELD_NUMBER: _ClassVar[int]
    attempt: int
    nodes: _containers.RepeatedScalarFieldContainer[str]
    start_time: float
    end_time: float
    ended: str
    def __init__(self, attempt: _Optional[int] = ..., nodes: _Optional[_Iterable[str]] = ..., start_time: _Optional[float] = ..., end_time: _Optional[float] = ..., ended: _Optional[str] = ...) -> None: ...

class NodeGpus(_message.Message):
    __slots__ = ("node", "indices", "cpus", "mem_mb")
    NODE_FIELD_NUMBER: _ClassVar[int]
    INDICES_FIELD_NUMBER: _ClassVar[int]
    CPUS_FIELD_NUMBER: _ClassVar[int]
    MEM_MB_FIELD_NUMBER: _ClassVar[int]
    node: str
    indices: _containers.RepeatedScalarFieldContainer[int]
    cpus: int
    mem_mb: int
    def __init__(self, node: _Optional[str] = ..., indices: _Optional[_Iterable[int]] = ..., cpus: _Optional[int] = ..., mem_mb: _Optional[int] = ...) -> None: ...

class SubmitRequest(_message.Message):
    __slots__ = ("spec", "allocation")
    SPEC_FIELD_NUMBER: _ClassVar[int]
    ALLOCATION_FIELD_NUMBER: _ClassVar[int]
    spec: JobSpec
    allocation: bool
    def __init__(self, spec: _Optional[_Union[JobSpec, _Mapping]] = ..., allocation: _Optional[bool] = ...) -> None: ...

class SubmitReply(_message.Message):
    __slots__ = ("job_id", "step_token")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_TOKEN_FIELD_NUMBER: _ClassVar[int]
    job_id: int
    step_token: str
    def __init__(self, job_id: _Optional[int] = ..., step_token: _Optional[str] = ...) -> None: ...

class JobFilter(_message.Message):
    __slots__ = ("job_ids", "users", "states", "partitions", "names", "all_states", "detail", "job_refs")
    JOB_IDS_FIELD_NUMBER: _ClassVar[int]
    USERS_FIELD_NUMBER: _ClassVar[int]
    STATES_FIELD_NUMBER: _ClassVar[int]
    PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    NAMES_FIELD_NUMBER: _ClassVar[int]
    ALL_STATES_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    JOB_REFS_FIELD_NUMBER: _ClassVar[int]
    job_ids: _containers.RepeatedScalarFieldContainer[int]
    users: _containers.RepeatedScalarFieldContainer[str]
    states: _containers.RepeatedScalarFieldContainer[str]
    partitions: _containers.RepeatedScalarFieldContainer[str]
    names: _containers.RepeatedScalarFieldContainer[str]
    all_states: bool
    detail: bool
    job_refs: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, job_ids: _Optional[_Iterable[int]] = ..., users: _Optional[_Iterable[str]] = ..., states: _Optional[_Iterable[str]] = ..., partitions: _Optional[_Iterable[str]] = ..., names: _Optional[_Iterable[str]] = ..., all_states: _Optional[bool] = ..., detail: _Optional[bool] = ..., job_refs: _Optional[_Iterable[str]] = ...) -> None: ...

class ListJobsRequest(_message.Message):
    __slots__ = ("filter", "with_steps", "with_start")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    WITH_STEPS_FIELD_NUMBER: _ClassVar[int]
    WITH_START_FIELD_NUMBER: _ClassVar[int]
    filter: JobFilter
    with_steps: bool
    with_start: bool
    def __init__(self, filter: _Optional[_Union[JobFilter, _Mapping]] = ..., with_steps: _Optional[bool] = ..., with_start: _Optional[bool] = ...) -> None: ...

class ListJobsReply(_message.Message):
    __slots__ = ("jobs", "now", "steps", "planned")
    JOBS_FIELD_NUMBER: _ClassVar[int]
    NOW_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    PLANNED_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[JobInfo]
    now: float
    steps: _containers.RepeatedCompositeFieldContainer[StepInfo]
    planned: _containers.RepeatedCompositeFieldContainer[PlannedStart]
    def __init__(self, jobs: _Optional[_Iterable[_Union[JobInfo, _Mapping]]] = ..., now: _Optional[float] = ..., steps: _Optional[_Iterable[_Union[StepInfo, _Mapping]]] = ..., planned: _Optional[_Iterable[_Union[PlannedStart, _Mapping]]] = ...) -> None: ...

class PlannedStart(_message.Message):
    __slots__ = ("job_id", "start_time", "nodes")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    job_id: int
    start_time: float
    nodes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, job_id: _Optional[int] = ..., start_time: _Optional[float] = ..., nodes: _Optional[_Iterable[str]] = ...) -> None: ...

class StepInfo(_message.Message):
    __slots__ = ("job_id", "step_id", "name", "nodes", "ntasks", "start_time", "end_time", "state", "exit_code", "exit_signal", "attempt")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    NTASKS_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    EXIT_SIGNAL_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    job_id: int
    step_id: int
    name: str
    nodes: _containers.RepeatedScalarFieldContainer[str]
    ntasks: int
    start_time: float
    end_time: float
    state: str
    exit_code: int
    exit_signal: int
    attempt: int
    def __init__(self, job_id: _Optional[int] = ..., step_id: _Optional[int] = ..., name: _Optional[str] = ..., nodes: _Optional[_Iterable[str]] = ..., ntasks: _Optional[int] = ..., start_time: _Optional[float] = ..., end_time: _Optional[float] = ..., state: _Optional[str] = ..., exit_code: _Optional[int] = ..., exit_signal: _Optional[int] = ..., attempt: _Optional[int] = ...) -> None: ...

class CancelRequest(_message.Message):
    __slots__ = ("filter", "signal", "batch_only")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_FIELD_NUMBER: _ClassVar[int]
    BATCH_ONLY_FIELD_NUMBER: _ClassVar[int]
    filter: JobFilter
    signal: int
    batch_only: bool
    def __init__(self, filter: _Optional[_Union[JobFilter, _Mapping]] = ..., signal: _Optional[int] = ..., batch_only: _Optional[bool] = ...) -> None: ...

class JobResult(_message.Message):
    __slots__ = ("job_id", "ok", "error", "job_label")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    OK_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    JOB_LABEL_FIELD_NUMBER: _ClassVar[int]
    job_id: int
    ok: bool
    error: str
    job_label: str
    def __init__(self, job_id: _Optional[int] = ..., ok: _Optional[bool] = ..., error: _Optional[str] = ..., job_label: _Optional[str] = ...) -> None: ...

class CancelReply(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[JobResult]
    def __init__(self, results: _Optional[_Iterable[_Union[JobResult, _Mapping]]] = ...) -> None: ...

class JobIdsRequest(_message.Message):
    __slots__ = ("job_ids", "hold", "job_refs", "user_hold")
    JOB_IDS_FIELD_NUMBER: _ClassVar[int]
    HOLD_FIELD_NUMBER: _ClassVar[int]
    JOB_REFS_FIELD_NUMBER: _ClassVar[int]
    USER_HOLD_FIELD_NUMBER: _ClassVar[int]
    job_ids: _containers.RepeatedScalarFieldContainer[int]
    hold: bool
    job_refs: _containers.RepeatedScalarFieldContainer[str]
    user_hold: bool
    def __init__(self, job_ids: _Optional[_Iterable[int]] = ..., hold: _Optional[bool] = ..., job_refs: _Optional[_Iterable[str]] = ..., user_hold: _Optional[bool] = ...) -> None: ...

class JobIdsReply(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[JobResult]
    def __init__(self, results: _Optional[_Iterable[_Union[JobResult, _Mapping]]] = ...) -> None: ...

class UpdateJobRequest(_message.Message):
    __slots__ = ("job_id", "fields", "job_ref")
    class FieldsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    JOB_REF_FIELD_NUMBER: _ClassVar[int]
    job_id: int
    fields: _containers.ScalarMap[str, str]
    job_ref: str
    def __init__(self, job_id: _Optional[int] = ..., fields: _Optional[_Mapping[str, str]] = ..., job_ref: _Optional[str] = ...) -> None: ...

class UpdateJobReply(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class HistoryRequest(_message.Message):
    __slots__ = ("job_ids", "users", "all_users", "states", "start_after", "end_before", "limit", "with_steps")
    JOB_IDS_FIELD_NUMBER: _ClassVar[int]
    USERS_FIELD_NUMBER: _ClassVar[int]
    ALL_USERS_FIELD_NUMBER: _ClassVar[int]
    STATES_FIELD_NUMBER: _ClassVar[int]
    START_AFTER_FIELD_NUMBER: _ClassVar[int]
    END_BEFORE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    WITH_STEPS_FIELD_NUMBER: _ClassVar[int]
    job_ids: _containers.RepeatedScalarFieldContainer[int]
    users: _containers.RepeatedScalarFieldContainer[str]
    all_users: bool
    states: _containers.RepeatedScalarFieldContainer[str]
    start_after: float
    end_before: float
    limit: int
    with_steps: bool
    def __init__(self, job_ids: _Optional[_Iterable[int]] = ..., users: _Optional[_Iterable[str]] = ..., all_users: _Optional[bool] = ..., states: _Optional[_Iterable[str]] = ..., start_after: _Optional[float] = ..., end_before: _Optional[float] = ..., limit: _Optional[int] = ..., with_steps: _Optional[bool] = ...) -> None: ...

class GpuInfo(_message.Message):
    __slots__ = ("index", "uuid", "name", "type", "memory_mb", "healthy", "health_reason", "temperature_c", "utilization")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    UUID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    MEMORY_MB_FIELD_NUMBER: _ClassVar[int]
    HEALTHY_FIELD_NUMBER: _ClassVar[int]
    HEALTH_REASON_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_C_FIELD_NUMBER: _ClassVar[int]
    UTILIZATION_FIELD_NUMBER: _ClassVar[int]
    index: int
    uuid: str
    name: str
    type: str
    memory_mb: int
    healthy: bool
    health_reason: str
    temperature_c: int
    utilization: int
    def __init__(self, index: _Optional[int] = ..., uuid: _Optional[str] = ..., name: _Optional[str] = ..., type: _Optional[str] = ..., memory_mb: _Optional[int] = ..., healthy: _Optional[bool] = ..., health_reason: _Optional[str] = ..., temperature_c: _Optional[int] = ..., utilization: _Optional[int] = ...) -> None: ...

class NodeInfo(_message.Message):
    __slots__ = ("name", "state", "reason", "cpus", "cpus_alloc", "mem_mb", "mem_alloc_mb", "gpus", "gpus_alloc", "partitions", "address", "hostname", "gpu_backend", "last_seen", "boot_time", "registered_time", "version", "arch", "os", "cpu_load", "free_mem_mb", "job_ids", "reason_time", "reason_user", "connected", "failure_score", "confinement")
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CPUS_FIELD_NUMBER: _ClassVar[int]
    CPUS_ALLOC_FIELD_NUMBER: _ClassVar[int]
    MEM_MB_FIELD_NUMBER: _ClassVar[int]
    MEM_ALLOC_MB_FIELD_NUMBER: _ClassVar[int]
    GPUS_FIELD_NUMBER: _ClassVar[int]
    GPUS_ALLOC_FIELD_NUMBER: _ClassVar[int]
    PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    GPU_BACKEND_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_FIELD_NUMBER: _ClassVar[int]
    BOOT_TIME_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_TIME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ARCH_FIELD_NUMBER: _ClassVar[int]
    OS_FIELD_NUMBER: _ClassVar[int]
    CPU_LOAD_FIELD_NUMBER: _ClassVar[int]
    FREE_MEM_MB_FIELD_NUMBER: _ClassVar[int]
    JOB_IDS_FIELD_NUMBER: _ClassVar[int]
    REASON_TIME_FIELD_NUMBER: _ClassVar[int]
    REASON_USER_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_FIELD_NUMBER: _ClassVar[int]
    FAILURE_SCORE_FIELD_NUMBER: _ClassVar[int]
    CONFINEMENT_FIELD_NUMBER: _ClassVar[int]
    name: str
    state: str
    reason: str
    cpus: int
    cpus_alloc: int
    mem_mb: int
    mem_alloc_mb: int
    gpus: _containers.RepeatedCompositeFieldContainer[GpuInfo]
    gpus_alloc: int
    partitions: _containers.RepeatedScalarFieldContainer[str]
    address: str
    hostname: str
    gpu_backend: str
    last_seen: float
    boot_time: float
    registered_time: float
    version: str
    arch: str
    os: str
    cpu_load: float
    free_mem_mb: int
    job_ids: _containers.RepeatedScalarFieldContainer[int]
    reason_time: float
    reason_user: str
    connected: bool
    failure_score: int
    confinement: str
    def __init__(self, name: _Optional[str] = ..., state: _Optional[str] = ..., reason: _Optional[str] = ..., cpus: _Optional[int] = ..., cpus_alloc: _Optional[int] = ..., mem_mb: _Optional[int] = ..., mem_alloc_mb: _Optional[int] = ..., gpus: _Optional[_Iterable[_Union[GpuInfo, _Mapping]]] = ..., gpus_alloc: _Optional[int] = ..., partitions: _Optional[_Iterable[str]] = ..., address: _Optional[str] = ..., hostname: _Optional[str] = ..., gpu_backend: _Optional[str] = ..., last_seen: _Optional[float] = ..., boot_time: _Optional[float] = ..., registered_time: _Optional[float] = ..., version: _Optional[str] = ..., arch: _Optional[str] = ..., os: _Optional[str] = ..., cpu_load: _Optional[float] = ..., free_mem_mb: _Optional[int] = ..., job_ids: _Optional[_Iterable[int]] = ..., reason_time: _Optional[float] = ..., reason_user: _Optional[str] = ..., connected: _Optional[bool] = ..., failure_score: _Optional[int] = ..., confinement: _Optional[str] = ...) -> None: ...

class PartitionInfo(_message.Message):
    __slots__ = ("name", "is_default", "state", "nodes", "default_time", "max_time", "max_nodes", "priority_tier", "priority_job_factor", "allow_accounts", "allow_groups", "exclusive")
    NAME_FIELD_NUMBER: _ClassVar[int]
    IS_DEFAULT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_TIME_FIELD_NUMBER: _ClassVar[int]
    MAX_TIME_FIELD_NUMBER: _ClassVar[int]
    MAX_NODES_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_TIER_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_JOB_FACTOR_FIELD_NUMBER: _ClassVar[int]
    ALLOW_ACCOUNTS_FIELD_NUMBER: _ClassVar[int]
    ALLOW_GROUPS_FIELD_NUMBER: _ClassVar[int]
    EXCLUSIVE_FIELD_NUMBER: _ClassVar[int]
    name: str
    is_default: bool
    state: str
    nodes: _containers.RepeatedScalarFieldContainer[str]
    default_time: int
    max_time: int
    max_nodes: int
    priority_tier: int
    priority_job_factor: int
    allow_accounts: _containers.RepeatedScalarFieldContainer[str]
    allow_groups: _containers.RepeatedScalarFieldContainer[str]
    exclusive: bool
    def __init__(self, name: _Optional[str] = ..., is_default: _Optional[bool] = ..., state: _Optional[str] = ..., nodes: _Optional[_Iterable[str]] = ..., default_time: _Optional[int] = ..., max_time: _Optional[int] = ..., max_nodes: _Optional[int] = ..., priority_tier: _Optional[int] = ..., priority_job_factor: _Optional[int] = ..., allow_accounts: _Optional[_Iterable[str]] = ..., allow_groups: _Optional[_Iterable[str]] = ..., exclusive: _Optional[bool] = ...) -> None: ...

class ListNodesRequest(_message.Message):
    __slots__ = ("names",)
    NAMES_FIELD_NUMBER: _ClassVar[int]
    names: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, names: _Optional[_Iterable[str]] = ...) -> None: ...

class ListNodesReply(_message.Message):
    __slots__ = ("nodes", "partitions", "now", "auth_type")
    NODES_FIELD_NUMBER: _ClassVar[int]
    PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    NOW_FIELD_NUMBER: _ClassVar[int]
    AUTH_TYPE_FIELD_NUMBER: _ClassVar[int]
    nodes: _containers.RepeatedCompositeFieldContainer[NodeInfo]
    partitions: _containers.RepeatedCompositeFieldContainer[PartitionInfo]
    now: float
    auth_type: str
    def __init__(self, nodes: _Optional[_Iterable[_Union[NodeInfo, _Mapping]]] = ..., partitions: _Optional[_Iterable[_Union[PartitionInfo, _Mapping]]] = ..., now: _Optional[float] = ..., auth_type: _Optional[str] = ...) -> None: ...

class UpdateNodeRequest(_message.Message):
    __slots__ = ("names", "state", "reason", "allow_host")
    NAMES_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ALLOW_HOST_FIELD_NUMBER: _ClassVar[int]
    names: _containers.RepeatedScalarFieldContainer[str]
    state: str
    reason: str
    allow_host: str
    def __init__(self, names: _Optional[_Iterable[str]] = ..., state: _Optional[str] = ..., reason: _Optional[str] = ..., allow_host: _Optional[str] = ...) -> None: ...

class UpdateNodeReply(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PingRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PingReply(_message.Message):
    __slots__ = ("version", "now", "started", "cluster_name", "auth_type")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    NOW_FIELD_NUMBER: _ClassVar[int]
    STARTED_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_NAME_FIELD_NUMBER: _ClassVar[int]
    AUTH_TYPE_FIELD_NUMBER: _ClassVar[int]
    version: str
    now: float
    started: float
    cluster_name: str
    auth_type: str
    def __init__(self, version: _Optional[str] = ..., now: _Optional[float] = ..., started: _Optional[float] = ..., cluster_name: _Optional[str] = ..., auth_type: _Optional[str] = ...) -> None: ...

class StepRequest(_message.Message):
    __slots__ = ("job_id", "argv", "nodes", "ntasks", "ntasks_per_node", "nodelist", "exclude", "cpus_per_task", "gpus_per_task", "environment", "cwd", "kill_on_bad_exit", "wait", "gpu_bind", "label", "pty", "rows", "cols", "step_token")
    class EnvironmentEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    ARGV_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    NTASKS_FIELD_NUMBER: _ClassVar[int]
    NTASKS_PER_NODE_FIELD_NUMBER: _ClassVar[int]
    NODELIST_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_FIELD_NUMBER: _ClassVar[int]
    CPUS_PER_TASK_FIELD_NUMBER: _ClassVar[int]
    GPUS_PER_TASK_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    CWD_FIELD_NUMBER: _ClassVar[int]
    KILL_ON_BAD_EXIT_FIELD_NUMBER: _ClassVar[int]
    WAIT_FIELD_NUMBER: _ClassVar[int]
    GPU_BIND_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    PTY_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    COLS_FIELD_NUMBER: _ClassVar[int]
    STEP_TOKEN_FIELD_NUMBER: _ClassVar[int]
    job_id: int
    argv: _containers.RepeatedScalarFieldContainer[str]
    nodes: int
    ntasks: int
    ntasks_per_node: int
    nodelist: _containers.RepeatedScalarFieldContainer[str]
    exclude: _containers.RepeatedScalarFieldContainer[str]
    cpus_per_task: int
    gpus_per_task: int
    environment: _containers.ScalarMap[str, str]
    cwd: str
    kill_on_bad_exit: bool
    wait: int
    gpu_bind: str
    label: bool
    pty: bool
    rows: int
    cols: int
    step_token: str
    def __init__(self, job_id: _Optional[int] = ..., argv: _Optional[_Iterable[str]] = ..., nodes: _Optional[int] = ..., ntasks: _Optional[int] = ..., ntasks_per_node: _Optional[int] = ..., nodelist: _Optional[_Iterable[str]] = ..., exclude: _Optional[_Iterable[str]] = ..., cpus_per_task: _Optional[int] = ..., gpus_per_task: _Optional[int] = ..., environment: _Optional[_Mapping[str, str]] = ..., cwd: _Optional[str] = ..., kill_on_bad_exit: _Optional[bool] = ..., wait: _Optional[int] = ..., gpu_bind: _Optional[str] = ..., label: _Optional[bool] = ..., pty: _Optional[bool] = ..., rows: _Optional[int] = ..., cols: _Optional[int] = ..., step_token: _Optional[str] = ...) -> None: ...

class StepTask(_message.Message):
    __slots__ = ("rank", "local_rank", "node_index", "node")
    RANK_FIELD_NUMBER: _ClassVar[int]
    LOCAL_RANK_FIELD_NUMBER: _ClassVar[int]
    NODE_INDEX_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    rank: int
    local_rank: int
    node_index: int
    node: str
    def __init__(self, rank: _Optional[int] = ..., local_rank: _Optional[int] = ..., node_index: _Optional[int] = ..., node: _Optional[str] = ...) -> None: ...

class StepEvent(_message.Message):
    __slots__ = ("started", "output", "task_exit", "done")
    class Started(_message.Message):
        __slots__ = ("step_id", "tasks", "nodes")
        STEP_ID_FIELD_NUMBER: _ClassVar[int]
        TASKS_FIELD_NUMBER: _ClassVar[int]
        NODES_FIELD_NUMBER: _ClassVar[int]
        step_id: int
        tasks: _containers.RepeatedCompositeFieldContainer[StepTask]
        nodes: _containers.RepeatedScalarFieldContainer[str]
        def __init__(self, step_id: _Optional[int] = ..., tasks: _Optional[_Iterable[_Union[StepTask, _Mapping]]] = ..., nodes: _Optional[_Iterable[str]] = ...) -> None: ...
    class Output(_message.Message):
        __slots__ = ("rank", "stream", "data")
        RANK_FIELD_NUMBER: _ClassVar[int]
        STREAM_FIELD_NUMBER: _ClassVar[int]
        DATA_FIELD_NUMBER: _ClassVar[int]
        rank: int
        stream: int
        data: bytes
        def __init__(self, rank: _Optional[int] = ..., stream: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...
    class TaskExit(_message.Message):
        __slots__ = ("rank", "exit_code", "signal")
        RANK_FIELD_NUMBER: _ClassVar[int]
        EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
        SIGNAL_FIELD_NUMBER: _ClassVar[int]
        rank: int
        exit_code: int
        signal: int
        def __init__(self, rank: _Optional[int] = ..., exit_code: _Optional[int] = ..., signal: _Optional[int] = ...) -> None: ...
    class Done(_message.Message):
        __slots__ = ("exit_code", "message")
        EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
        MESSAGE_FIELD_NUMBER: _ClassVar[int]
        exit_code: int
        message: str
        def __init__(self, exit_code: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...
    STARTED_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    TASK_EXIT_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    started: StepEvent.Started
    output: StepEvent.Output
    task_exit: StepEvent.TaskExit
    done: StepEvent.Done
    def __init__(self, started: _Optional[_Union[StepEvent.Started, _Mapping]] = ..., output: _Optional[_Union[StepEvent.Output, _Mapping]] = ..., task_exit: _Optional[_Union[StepEvent.TaskExit, _Mapping]] = ..., done: _Optional[_Union[StepEvent.Done, _Mapping]] = ...) -> None: ...

class PrioritiesRequest(_message.Message):
    __slots__ = ("job_ids", "users")
    JOB_IDS_FIELD_NUMBER: _ClassVar[int]
    USERS_FIELD_NUMBER: _ClassVar[int]
    job_ids: _containers.RepeatedScalarFieldContainer[int]
    users: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, job_ids: _Optional[_Iterable[int]] = ..., users: _Optional[_Iterable[str]] = ...) -> None: ...

class PriorityWeights(_message.Message):
    __slots__ = ("age", "fairshare", "jobsize", "partition", "qos")
    AGE_FIELD_NUMBER: _ClassVar[int]
    FAIRSHARE_FIELD_NUMBER: _ClassVar[int]
    JOBSIZE_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    QOS_FIELD_NUMBER: _ClassVar[int]
    age: int
    fairshare: int
    jobsize: int
    partition: int
    qos: int
    def __init__(self, age: _Optional[int] = ..., fairshare: _Optional[int] = ..., jobsize: _Optional[int] = ..., partition: _Optional[int] = ..., qos: _Optional[int] = ...) -> None: ...

class JobPriority(_message.Message):
    __slots__ = ("job_id", "partition", "user", "account", "qos", "priority", "age", "fairshare", "jobsize", "partition_factor", "qos_factor", "nice", "tier", "admin_set", "age_norm", "fairshare_norm", "jobsize_norm", "partition_norm", "qos_norm")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    QOS_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    AGE_FIELD_NUMBER: _ClassVar[int]
    FAIRSHARE_FIELD_NUMBER: _ClassVar[int]
    JOBSIZE_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FACTOR_FIELD_NUMBER: _ClassVar[int]
    QOS_FACTOR_FIELD_NUMBER: _ClassVar[int]
    NICE_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    ADMIN_SET_FIELD_NUMBER: _ClassVar[int]
    AGE_NORM_FIELD_NUMBER: _ClassVar[int]
    FAIRSHARE_NORM_FIELD_NUMBER: _ClassVar[int]
    JOBSIZE_NORM_FIELD_NUMBER: _ClassVar[int]
    PARTITION_NORM_FIELD_NUMBER: _ClassVar[int]
    QOS_NORM_FIELD_NUMBER: _ClassVar[int]
    job_id: int
    partition: str
    user: str
    account: str
    qos: str
    priority: int
    age: float
    fairshare: float
    jobsize: float
    partition_factor: float
    qos_factor: float
    nice: int
    tier: int
    admin_set: bool
    age_norm: float
    fairshare_norm: float
    jobsize_norm: float
    partition_norm: float
    qos_norm: float
    def __init__(self, job_id: _Optional[int] = ..., partition: _Optional[str] = ..., user: _Optional[str] = ..., account: _Optional[str] = ..., qos: _Optional[str] = ..., priority: _Optional[int] = ..., age: _Optional[float] = ..., fairshare: _Optional[float] = ..., jobsize: _Optional[float] = ..., partition_factor: _Optional[float] = ..., qos_factor: _Optional[float] = ..., nice: _Optional[int] = ..., tier: _Optional[int] = ..., admin_set: _Optional[bool] = ..., age_norm: _Optional[float] = ..., fairshare_norm: _Optional[float] = ..., jobsize_norm: _Optional[float] = ..., partition_norm: _Optional[float] = ..., qos_norm: _Optional[float] = ...) -> None: ...

class PrioritiesReply(_message.Message):
    __slots__ = ("jobs", "weights")
    JOBS_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[JobPriority]
    weights: PriorityWeights
    def __init__(self, jobs: _Optional[_Iterable[_Union[JobPriority, _Mapping]]] = ..., weights: _Optional[_Union[PriorityWeights, _Mapping]] = ...) -> None: ...

class SharesRequest(_message.Message):
    __slots__ = ("users", "accounts")
    USERS_FIELD_NUMBER: _ClassVar[int]
    ACCOUNTS_FIELD_NUMBER: _ClassVar[int]
    users: _containers.RepeatedScalarFieldContainer[str]
    accounts: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, users: _Optional[_Iterable[str]] = ..., accounts: _Optional[_Iterable[str]] = ...) -> None: ...

class ShareInfo(_message.Message):
    __slots__ = ("account", "user", "raw_shares", "norm_shares", "raw_usage", "norm_usage", "effective_usage", "fairshare")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    RAW_SHARES_FIELD_NUMBER: _ClassVar[int]
    NORM_SHARES_FIELD_NUMBER: _ClassVar[int]
    RAW_USAGE_FIELD_NUMBER: _ClassVar[int]
    NORM_USAGE_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_USAGE_FIELD_NUMBER: _ClassVar[int]
    FAIRSHARE_FIELD_NUMBER: _ClassVar[int]
    account: str
    user: str
    raw_shares: int
    norm_shares: float
    raw_usage: float
    norm_usage: float
    effective_usage: float
    fairshare: float
    def __init__(self, account: _Optional[str] = ..., user: _Optional[str] = ..., raw_shares: _Optional[int] = ..., norm_shares: _Optional[float] = ..., raw_usage: _Optional[float] = ..., norm_usage: _Optional[float] = ..., effective_usage: _Optional[float] = ..., fairshare: _Optional[float] = ...) -> None: ...

class SharesReply(_message.Message):
    __slots__ = ("rows",)
    ROWS_FIELD_NUMBER: _ClassVar[int]
    rows: _containers.RepeatedCompositeFieldContainer[ShareInfo]
    def __init__(self, rows: _Optional[_Iterable[_Union[ShareInfo, _Mapping]]] = ...) -> None: ...

class QosInfo(_message.Message):
    __slots__ = ("name", "priority", "max_wall", "max_tres_per_user", "max_jobs_per_user", "max_submit_jobs_per_user", "grp_tres", "preempt", "preempt_mode", "grace_time", "usage_factor")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    MAX_WALL_FIELD_NUMBER: _ClassVar[int]
    MAX_TRES_PER_USER_FIELD_NUMBER: _ClassVar[int]
    MAX_JOBS_PER_USER_FIELD_NUMBER: _ClassVar[int]
    MAX_SUBMIT_JOBS_PER_USER_FIELD_NUMBER: _ClassVar[int]
    GRP_TRES_FIELD_NUMBER: _ClassVar[int]
    PREEMPT_FIELD_NUMBER: _ClassVar[int]
    PREEMPT_MODE_FIELD_NUMBER: _ClassVar[int]
    GRACE_TIME_FIELD_NUMBER: _ClassVar[int]
    USAGE_FACTOR_FIELD_NUMBER: _ClassVar[int]
    name: str
    priority: int
    max_wall: int
    max_tres_per_user: str
    max_jobs_per_user: int
    max_submit_jobs_per_user: int
    grp_tres: str
    preempt: _containers.RepeatedScalarFieldContainer[str]
    preempt_mode: str
    grace_time: int
    usage_factor: float
    def __init__(self, name: _Optional[str] = ..., priority: _Optional[int] = ..., max_wall: _Optional[int] = ..., max_tres_per_user: _Optional[str] = ..., max_jobs_per_user: _Optional[int] = ..., max_submit_jobs_per_user: _Optional[int] = ..., grp_tres: _Optional[str] = ..., preempt: _Optional[_Iterable[str]] = ..., preempt_mode: _Optional[str] = ..., grace_time: _Optional[int] = ..., usage_factor: _Optional[float] = ...) -> None: ...

class AccountInfo(_message.Message):
    __slots__ = ("name", "shares", "users", "grp_tres")
    class UsersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    SHARES_FIELD_NUMBER: _ClassVar[int]
    USERS_FIELD_NUMBER: _ClassVar[int]
    GRP_TRES_FIELD_NUMBER: _ClassVar[int]
    name: str
    shares: int
    users: _containers.ScalarMap[str, int]
    grp_tres: str
    def __init__(self, name: _Optional[str] = ..., shares: _Optional[int] = ..., users: _Optional[_Mapping[str, int]] = ..., grp_tres: _Optional[str] = ...) -> None: ...

class GetPolicyRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PolicyReply(_message.Message):
    __slots__ = ("qos", "accounts", "default_accounts", "default_qos")
    class DefaultAccountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    QOS_FIELD_NUMBER: _ClassVar[int]
    ACCOUNTS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_ACCOUNTS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_QOS_FIELD_NUMBER: _ClassVar[int]
    qos: _containers.RepeatedCompositeFieldContainer[QosInfo]
    accounts: _containers.RepeatedCompositeFieldContainer[AccountInfo]
    default_accounts: _containers.ScalarMap[str, str]
    default_qos: str
    def __init__(self, qos: _Optional[_Iterable[_Union[QosInfo, _Mapping]]] = ..., accounts: _Optional[_Iterable[_Union[AccountInfo, _Mapping]]] = ..., default_accounts: _Optional[_Mapping[str, str]] = ..., default_qos: _Optional[str] = ...) -> None: ...

class UpdatePolicyRequest(_message.Message):
    __slots__ = ("verb", "entity", "name", "fields")
    class FieldsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    VERB_FIELD_NUMBER: _ClassVar[int]
    ENTITY_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    verb: str
    entity: str
    name: str
    fields: _containers.ScalarMap[str, str]
    def __init__(self, verb: _Optional[str] = ..., entity: _Optional[str] = ..., name: _Optional[str] = ..., fields: _Optional[_Mapping[str, str]] = ...) -> None: ...

class SignalStepRequest(_message.Message):
    __slots__ = ("job_id", "step_id", "signal", "step_token")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_FIELD_NUMBER: _ClassVar[int]
    STEP_TOKEN_FIELD_NUMBER: _ClassVar[int]
    job_id: int
    step_id: int
    signal: int
    step_token: str
    def __init__(self, job_id: _Optional[int] = ..., step_id: _Optional[int] = ..., signal: _Optional[int] = ..., step_token: _Optional[str] = ...) -> None: ...

class SignalStepReply(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class StepInputRequest(_message.Message):
    __slots__ = ("job_id", "step_id", "data", "rows", "cols", "eof", "step_token")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_ID_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    COLS_FIELD_NUMBER: _ClassVar[int]
    EOF_FIELD_NUMBER: _ClassVar[int]
    STEP_TOKEN_FIELD_NUMBER: _ClassVar[int]
    job_id: int
    step_id: int
    data: bytes
    rows: int
    cols: int
    eof: bool
    step_token: str
    def __init__(self, job_id: _Optional[int] = ..., step_id: _Optional[int] = ..., data: _Optional[bytes] = ..., rows: _Optional[int] = ..., cols: _Optional[int] = ..., eof: _Optional[bool] = ..., step_token: _Optional[str] = ...) -> None: ...

class StepInputReply(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AttemptRef(_message.Message):
    __slots__ = ("job_id", "attempt")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    job_id: int
    attempt: int
    def __init__(self, job_id: _Optional[int] = ..., attempt: _Optional[int] = ...) -> None: ...

class Hello(_message.Message):
    __slots__ = ("node", "hostname", "address", "cpus", "mem_mb", "gpus", "gpu_backend", "running", "version", "boot_time", "arch", "os", "secret", "finished", "sent", "confinement")
    NODE_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    CPUS_FIELD_NUMBER: _ClassVar[int]
    MEM_MB_FIELD_NUMBER: _ClassVar[int]
    GPUS_FIELD_NUMBER: _ClassVar[int]
    GPU_BACKEND_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    BOOT_TIME_FIELD_NUMBER: _ClassVar[int]
    ARCH_FIELD_NUMBER: _ClassVar[int]
    OS_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    FINISHED_FIELD_NUMBER: _ClassVar[int]
    SENT_FIELD_NUMBER: _ClassVar[int]
    CONFINEMENT_FIELD_NUMBER: _ClassVar[int]
    node: str
    hostname: str
    address: str
    cpus: int
    mem_mb: int
    gpus: _containers.RepeatedCompositeFieldContainer[GpuInfo]
    gpu_backend: str
    running: _containers.RepeatedCompositeFieldContainer[AttemptRef]
    version: str
    boot_time: float
    arch: str
    os: str
    secret: str
    finished: _containers.RepeatedCompositeFieldContainer[AttemptRef]
    sent: float
    confinement: str
    def __init__(self, node: _Optional[str] = ..., hostname: _Optional[str] = ..., address: _Optional[str] = ..., cpus: _Optional[int] = ..., mem_mb: _Optional[int] = ..., gpus: _Optional[_Iterable[_Union[GpuInfo, _Mapping]]] = ..., gpu_backend: _Optional[str] = ..., running: _Optional[_Iterable[_Union[AttemptRef, _Mapping]]] = ..., version: _Optional[str] = ..., boot_time: _Optional[float] = ..., arch: _Optional[str] = ..., os: _Optional[str] = ..., secret: _Optional[str] = ..., finished: _Optional[_Iterable[_Union[AttemptRef, _Mapping]]] = ..., sent: _Optional[float] = ..., confinement: _Optional[str] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("cpu_load", "free_mem_mb", "gpus", "running", "sent")
    CPU_LOAD_FIELD_NUMBER: _ClassVar[int]
    FREE_MEM_MB_FIELD_NUMBER: _ClassVar[int]
    GPUS_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    SENT_FIELD_NUMBER: _ClassVar[int]
    cpu_load: float
    free_mem_mb: int
    gpus: _containers.RepeatedCompositeFieldContainer[GpuInfo]
    running: _containers.RepeatedCompositeFieldContainer[AttemptRef]
    sent: float
    def __init__(self, cpu_load: _Optional[float] = ..., free_mem_mb: _Optional[int] = ..., gpus: _Optional[_Iterable[_Union[GpuInfo, _Mapping]]] = ..., running: _Optional[_Iterable[_Union[AttemptRef, _Mapping]]] = ..., sent: _Optional[float] = ...) -> None: ...

class JobStarted(_message.Message):
    __slots__ = ("ref", "pid", "start_time")
    REF_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    ref: AttemptRef
    pid: int
    start_time: float
    def __init__(self, ref: _Optional[_Union[AttemptRef, _Mapping]] = ..., pid: _Optional[int] = ..., start_time: _Optional[float] = ...) -> None: ...

class JobExited(_message.Message):
    __slots__ = ("ref", "exit_code", "signal", "reason", "end_time", "message")
    REF_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ref: AttemptRef
    exit_code: int
    signal: int
    reason: str
    end_time: float
    message: str
    def __init__(self, ref: _Optional[_Union[AttemptRef, _Mapping]] = ..., exit_code: _Optional[int] = ..., signal: _Optional[int] = ..., reason: _Optional[str] = ..., end_time: _Optional[float] = ..., message: _Optional[str] = ...) -> None: ...

class AgentMessage(_message.Message):
    __slots__ = ("hello", "heartbeat", "started", "exited", "step_output", "step_exit")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    STARTED_FIELD_NUMBER: _ClassVar[int]
    EXITED_FIELD_NUMBER: _ClassVar[int]
    STEP_OUTPUT_FIELD_NUMBER: _ClassVar[int]
    STEP_EXIT_FIELD_NUMBER: _ClassVar[int]
    hello: Hello
    heartbeat: Heartbeat
    started: JobStarted
    exited: JobExited
    step_output: StepOutput
    step_exit: StepTaskExit
    def __init__(self, hello: _Optional[_Union[Hello, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., started: _Optional[_Union[JobStarted, _Mapping]] = ..., exited: _Optional[_Union[JobExited, _Mapping]] = ..., step_output: _Optional[_Union[StepOutput, _Mapping]] = ..., step_exit: _Optional[_Union[StepTaskExit, _Mapping]] = ...) -> None: ...

class Launch(_message.Message):
    __slots__ = ("ref", "spec", "user", "uid", "gid", "group", "nodes", "node_index", "partition", "time_limit", "stdout_path", "stderr_path", "cluster_name", "ntasks", "submit_time", "kill_wait", "node_addresses", "controller_address", "batch", "last_failure", "array_job_id", "array_task_id", "array_task_count", "array_task_min", "array_task_max", "array_task_step", "step_token")
    class NodeAddressesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    REF_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    UID_FIELD_NUMBER: _ClassVar[int]
    GID_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    NODE_INDEX_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    TIME_LIMIT_FIELD_NUMBER: _ClassVar[int]
    STDOUT_PATH_FIELD_NUMBER: _ClassVar[int]
    STDERR_PATH_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_NAME_FIELD_NUMBER: _ClassVar[int]
    NTASKS_FIELD_NUMBER: _ClassVar[int]
    SUBMIT_TIME_FIELD_NUMBER: _ClassVar[int]
    KILL_WAIT_FIELD_NUMBER: _ClassVar[int]
    NODE_ADDRESSES_FIELD_NUMBER: _ClassVar[int]
    CONTROLLER_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    LAST_FAILURE_FIELD_NUMBER: _ClassVar[int]
    ARRAY_JOB_ID_FIELD_NUMBER: _ClassVar[int]
    ARRAY_TASK_ID_FIELD_NUMBER: _ClassVar[int]
    ARRAY_TASK_COUNT_FIELD_NUMBER: _ClassVar[int]
    ARRAY_TASK_MIN_FIELD_NUMBER: _ClassVar[int]
    ARRAY_TASK_MAX_FIELD_NUMBER: _ClassVar[int]
    ARRAY_TASK_STEP_FIELD_NUMBER: _ClassVar[int]
    STEP_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ref: AttemptRef
    spec: JobSpec
    user: str
    uid: int
    gid: int
    group: str
    nodes: _containers.RepeatedCompositeFieldContainer[NodeGpus]
    node_index: int
    partition: str
    time_limit: int
    stdout_path: str
    stderr_path: str
    cluster_name: str
    ntasks: int
    submit_time: float
    kill_wait: int
    node_addresses: _containers.ScalarMap[str, str]
    controller_address: str
    batch: bool
    last_failure: str
    array_job_id: int
    array_task_id: int
    array_task_count: int
    array_task_min: int
    array_task_max: int
    array_task_step: int
    step_token: str
    def __init__(self, ref: _Optional[_Union[AttemptRef, _Mapping]] = ..., spec: _Optional[_Union[JobSpec, _Mapping]] = ..., user: _Optional[str] = ..., uid: _Optional[int] = ..., gid: _Optional[int] = ..., group: _Optional[str] = ..., nodes: _Optional[_Iterable[_Union[NodeGpus, _Mapping]]] = ..., node_index: _Optional[int] = ..., partition: _Optional[str] = ..., time_limit: _Optional[int] = ..., stdout_path: _Optional[str] = ..., stderr_path: _Optional[str] = ..., cluster_name: _Optional[str] = ..., ntasks: _Optional[int] = ..., submit_time: _Optional[float] = ..., kill_wait: _Optional[int] = ..., node_addresses: _Optional[_Mapping[str, str]] = ..., controller_address: _Optional[str] = ..., batch: _Optional[bool] = ..., last_failure: _Optional[str] = ..., array_job_id: _Optional[int] = ..., array_task_id: _Optional[int] = ..., array_task_count: _Optional[int] = ..., array_task_min: _Optional[int] = ..., array_task_max: _Optional[int] = ..., array_task_step: _Optional[int] = ..., step_token: _Optional[str] = ...) -> None: ...

class SignalJob(_message.Message):
    __slots__ = ("ref", "signal", "batch_only", "job_warning")
    REF_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_FIELD_NUMBER: _ClassVar[int]
    BATCH_ONLY_FIELD_NUMBER: _ClassVar[int]
    JOB_WARNING_FIELD_NUMBER: _ClassVar[int]
    ref: AttemptRef
    signal: int
    batch_only: bool
    job_warning: bool
    def __init__(self, ref: _Optional[_Union[AttemptRef, _Mapping]] = ..., signal: _Optional[int] = ..., batch_only: _Optional[bool] = ..., job_warning: _Optional[bool] = ...) -> None: ...

class KillJob(_message.Message):
    __slots__ = ("ref", "reason")
    REF_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ref: AttemptRef
    reason: str
    def __init__(self, ref: _Optional[_Union[AttemptRef, _Mapping]] = ..., reason: _Optional[str] = ...) -> None: ...

class ExitAck(_message.Message):
    __slots__ = ("ref", "more")
    REF_FIELD_NUMBER: _ClassVar[int]
    MORE_FIELD_NUMBER: _ClassVar[int]
    ref: AttemptRef
    more: _containers.RepeatedCompositeFieldContainer[AttemptRef]
    def __init__(self, ref: _Optional[_Union[AttemptRef, _Mapping]] = ..., more: _Optional[_Iterable[_Union[AttemptRef, _Mapping]]] = ...) -> None: ...

class StepLaunch(_message.Message):
    __slots__ = ("ref", "step_id", "argv", "environment", "cwd", "tasks", "uid", "gid", "user", "gpus", "gpus_per_task", "ntasks", "nodes", "tasks_per_node", "master_addr", "master_port", "cpus_per_task", "pty", "rows", "cols")
    class EnvironmentEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    REF_FIELD_NUMBER: _ClassVar[int]
    STEP_ID_FIELD_NUMBER: _ClassVar[int]
    ARGV_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    CWD_FIELD_NUMBER: _ClassVar[int]
    TASKS_FIELD_NUMBER: _ClassVar[int]
    UID_FIELD_NUMBER: _ClassVar[int]
    GID_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    GPUS_FIELD_NUMBER: _ClassVar[int]
    GPUS_PER_TASK_FIELD_NUMBER: _ClassVar[int]
    NTASKS_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    TASKS_PER_NODE_FIELD_NUMBER: _ClassVar[int]
    MASTER_ADDR_FIELD_NUMBER: _ClassVar[int]
    MASTER_PORT_FIELD_NUMBER: _ClassVar[int]
    CPUS_PER_TASK_FIELD_NUMBER: _ClassVar[int]
    PTY_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    COLS_FIELD_NUMBER: _ClassVar[int]
    ref: AttemptRef
    step_id: int
    argv: _containers.RepeatedScalarFieldContainer[str]
    environment: _containers.ScalarMap[str, str]
    cwd: str
    tasks: _containers.RepeatedCompositeFieldContainer[StepTask]
    uid: int
    gid: int
    user: str
    gpus: _containers.RepeatedScalarFieldContainer[int]
    gpus_per_task: int
    ntasks: int
    nodes: _containers.RepeatedScalarFieldContainer[str]
    tasks_per_node: str
    master_addr: str
    master_port: int
    cpus_per_task: int
    pty: bool
    rows: int
    cols: int
    def __init__(self, ref: _Optional[_Union[AttemptRef, _Mapping]] = ..., step_id: _Optional[int] = ..., argv: _Optional[_Iterable[str]] = ..., environment: _Optional[_Mapping[str, str]] = ..., cwd: _Optional[str] = ..., tasks: _Optional[_Iterable[_Union[StepTask, _Mapping]]] = ..., uid: _Optional[int] = ..., gid: _Optional[int] = ..., user: _Optional[str] = ..., gpus: _Optional[_Iterable[int]] = ..., gpus_per_task: _Optional[int] = ..., ntasks: _Optional[int] = ..., nodes: _Optional[_Iterable[str]] = ..., tasks_per_node: _Optional[str] = ..., master_addr: _Optional[str] = ..., master_port: _Optional[int] = ..., cpus_per_task: _Optional[int] = ..., pty: _Optional[bool] = ..., rows: _Optional[int] = ..., cols: _Optional[int] = ...) -> None: ...

class StepInput(_message.Message):
    __slots__ = ("ref", "step_id", "data", "rows", "cols", "eof")
    REF_FIELD_NUMBER: _ClassVar[int]
    STEP_ID_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    COLS_FIELD_NUMBER: _ClassVar[int]
    EOF_FIELD_NUMBER: _ClassVar[int]
    ref: AttemptRef
    step_id: int
    data: bytes
    rows: int
    cols: int
    eof: bool
    def __init__(self, ref: _Optional[_Union[AttemptRef, _Mapping]] = ..., step_id: _Optional[int] = ..., data: _Optional[bytes] = ..., rows: _Optional[int] = ..., cols: _Optional[int] = ..., eof: _Optional[bool] = ...) -> None: ...

class StepKill(_message.Message):
    __slots__ = ("ref", "step_id", "signal")
    REF_FIELD_NUMBER: _ClassVar[int]
    STEP_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_FIELD_NUMBER: _ClassVar[int]
    ref: AttemptRef
    step_id: int
    signal: int
    def __init__(self, ref: _Optional[_Union[AttemptRef, _Mapping]] = ..., step_id: _Optional[int] = ..., signal: _Optional[int] = ...) -> None: ...

class StepOutput(_message.Message):
    __slots__ = ("ref", "step_id", "rank", "stream", "data")
    REF_FIELD_NUMBER: _ClassVar[int]
    STEP_ID_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    ref: AttemptRef
    step_id: int
    rank: int
    stream: int
    data: bytes
    def __init__(self, ref: _Optional[_Union[AttemptRef, _Mapping]] = ..., step_id: _Optional[int] = ..., rank: _Optional[int] = ..., stream: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

class StepTaskExit(_message.Message):
    __slots__ = ("ref", "step_id", "rank", "exit_code", "signal", "message")
    REF_FIELD_NUMBER: _ClassVar[int]
    STEP_ID_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ref: AttemptRef
    step_id: int
    rank: int
    exit_code: int
    signal: int
    message: str
    def __init__(self, ref: _Optional[_Union[AttemptRef, _Mapping]] = ..., step_id: _Optional[int] = ..., rank: _Optional[int] = ..., exit_code: _Optional[int] = ..., signal: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class Welcome(_message.Message):
    __slots__ = ("heartbeat_interval", "cluster_name", "controller_version", "hello_sent", "fence_after", "fence_grace", "controller_proof")
    HEARTBEAT_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_NAME_FIELD_NUMBER: _ClassVar[int]
    CONTROLLER_VERSION_FIELD_NUMBER: _ClassVar[int]
    HELLO_SENT_FIELD_NUMBER: _ClassVar[int]
    FENCE_AFTER_FIELD_NUMBER: _ClassVar[int]
    FENCE_GRACE_FIELD_NUMBER: _ClassVar[int]
    CONTROLLER_PROOF_FIELD_NUMBER: _ClassVar[int]
    heartbeat_interval: float
    cluster_name: str
    controller_version: str
    hello_sent: float
    fence_after: float
    fence_grace: float
    controller_proof: str
    def __init__(self, heartbeat_interval: _Optional[float] = ..., cluster_name: _Optional[str] = ..., controller_version: _Optional[str] = ..., hello_sent: _Optional[float] = ..., fence_after: _Optional[float] = ..., fence_grace: _Optional[float] = ..., controller_proof: _Optional[str] = ...) -> None: ...

class HeartbeatAck(_message.Message):
    __slots__ = ("sent",)
    SENT_FIELD_NUMBER: _ClassVar[int]
    sent: float
    def __init__(self, sent: _Optional[float] = ...) -> None: ...

class ControllerMessage(_message.Message):
    __slots__ = ("welcome", "launch", "signal", "kill", "exit_ack", "heartbeat_ack", "step_launch", "step_kill", "step_input")
    WELCOME_FIELD_NUMBER: _ClassVar[int]
    LAUNCH_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_FIELD_NUMBER: _ClassVar[int]
    KILL_FIELD_NUMBER: _ClassVar[int]
    EXIT_ACK_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_ACK_FIELD_NUMBER: _ClassVar[int]
    STEP_LAUNCH_FIELD_NUMBER: _ClassVar[int]
    STEP_KILL_FIELD_NUMBER: _ClassVar[int]
    STEP_INPUT_FIELD_NUMBER: _ClassVar[int]
    welcome: Welcome
    launch: Launch
    signal: SignalJob
    kill: KillJob
    exit_ack: ExitAck
    heartbeat_ack: HeartbeatAck
    step_launch: StepLaunch
    step_kill: StepKill
    step_input: StepInput
    def __init__(self, welcome: _Optional[_Union[Welcome, _Mapping]] = ..., launch: _Optional[_Union[Launch, _Mapping]] = ..., signal: _Optional[_Union[SignalJob, _Mapping]] = ..., kill: _Optional[_Union[KillJob, _Mapping]] = ..., exit_ack: _Optional[_Union[ExitAck, _Mapping]] = ..., heartbeat_ack: _Optional[_Union[HeartbeatAck, _Mapping]] = ..., step_launch: _Optional[_Union[StepLaunch, _Mapping]] = ..., step_kill: _Optional[_Union[StepKill, _Mapping]] = ..., step_input: _Optional[_Union[StepInput, _Mapping]] = ...) -> None: ...
