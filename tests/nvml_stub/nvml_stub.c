/*
 * A stand-in for libnvidia-ml.so.1 so the real pynvml (and the agent's NVML
 * backend) can be tested on machines without an NVIDIA GPU.
 *
 * Inventory and faults come from the environment, read at nvmlInit:
 *   STUB_NVML_NO_DRIVER=1   nvmlInit fails with NVML_ERROR_DRIVER_NOT_LOADED
 *   STUB_NVML_COUNT=N       number of GPUs (default 4, at most 64)
 *   STUB_NVML_NAME=TEXT     product name (default "NVIDIA A100-SXM4-80GB")
 *   STUB_NVML_MEMORY_MB=N   total memory per GPU (default 81920)
 *   STUB_NVML_LOST=1,3      these GPUs answer every query with NVML_ERROR_GPU_IS_LOST
 *   STUB_NVML_LOST_FILE=P   the same list read from file P before every device
 *                           query (a missing file: none lost), to lose a GPU at runtime
 *   STUB_NVML_XID=2:79,0:13 XID events, each delivered once by nvmlEventSetWait_v2
 *   STUB_NVML_MEMORY=SPEC   memory health, SPEC a comma list of
 *                             ecc:GPU:N      N volatile uncorrectable ECC errors
 *                             retired:GPU    retired pages pending (reset needed)
 *                             remap:GPU      row remapping pending (reset needed)
 *                             remapfail:GPU  row remapping failed
 *   STUB_NVML_MEMORY_FILE=P the same SPEC read from file P before every query
 *   STUB_NVML_NO_ECC=1      ECC, retired-page and remap queries are Not Supported
 *                           (consumer GPUs)
 *
 * Built with -DSTUB_NO_EVENTS the event functions are left out, so pynvml
 * raises NVMLError_FunctionNotFound for them.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NVML_SUCCESS 0
#define NVML_ERROR_UNINITIALIZED 1
#define NVML_ERROR_INVALID_ARGUMENT 2
#define NVML_ERROR_NOT_SUPPORTED 3
#define NVML_ERROR_INSUFFICIENT_SIZE 7
#define NVML_ERROR_DRIVER_NOT_LOADED 9
#define NVML_ERROR_TIMEOUT 10
#define NVML_ERROR_GPU_IS_LOST 15
#define MAX_GPUS 64
#define MAX_EVENTS 64
#define XID_CRITICAL_EVENT 0x8ULL

typedef struct { char pad; } device_t;
typedef device_t *nvmlDevice_t;
typedef struct { int pad; } *nvmlEventSet_t;
typedef struct { unsigned long long total, free, used; } nvmlMemory_t;
typedef struct { unsigned int gpu, memory; } nvmlUtilization_t;
typedef struct {
    nvmlDevice_t device;
    unsigned long long eventType;
    unsigned long long eventData;
    unsigned int gpuInstanceId;
    unsigned int computeInstanceId;
} nvmlEventData_t;

static device_t devices[MAX_GPUS];
static int initialized, count = 4, lost[MAX_GPUS];
static const char *name = "NVIDIA A100-SXM4-80GB";
static unsigned long long memory_mb = 81920;
static int xid_gpu[MAX_EVENTS], xid_code[MAX_EVENTS], xid_count, xid_next;
static unsigned long long registered[MAX_GPUS];
static unsigned long long ecc_unc[MAX_GPUS];
static int retired_pending[MAX_GPUS], remap_pending[MAX_GPUS], remap_failed[MAX_GPUS];

/* Re-read a fault list from the file named by environment variable VAR (none: no-op). */
static void read_spec_file(const char *var, void (*parse)(const char *)) {
    char buf[512] = "";
    const char *path = getenv(var);
    FILE *f;
    if (!path) return;
    if ((f = fopen(path, "r"))) {
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = 0;
        fclose(f);
    }
    parse(buf);
}

static void parse_memory(const char *p) {
    memset(ecc_unc, 0, sizeof ecc_unc);
    memset(retired_pending, 0, sizeof retired_pending);
    memset(remap_pending, 0, sizeof remap_pending);
    memset(remap_failed, 0, sizeof remap_failed);
    while (*p) {
        int gpu;
        unsigned long long n;
        if (sscanf(p, "ecc:%d:%llu", &gpu, &n) == 2 && gpu >= 0 && gpu < MAX_GPUS)
            ecc_unc[gpu] = n;
        else if (sscanf(p, "retired:%d", &gpu) == 1 && gpu >= 0 && gpu < MAX_GPUS)
            retired_pending[gpu] = 1;
        else if (sscanf(p, "remapfail:%d", &gpu) == 1 && gpu >= 0 && gpu < MAX_GPUS)
            remap_failed[gpu] = 1;
        else if (sscanf(p, "remap:%d", &gpu) == 1 && gpu >= 0 && gpu < MAX_GPUS)
            remap_pending[gpu] = 1;
        while (*p && *p != ',') p++;
        if (*p == ',') p++;
    }
}

static void read_memory_file(void) { read_spec_file("STUB_NVML_MEMORY_FILE", parse_memory); }

static void parse_lost(const char *p) {
    memset(lost, 0, sizeof lost);
    while (*p) {
        int i = atoi(p);
        if (i >= 0 && i < MAX_GPUS) lost[i] = 1;
        while (*p && *p != ',') p++;
        if (*p == ',') p++;
    }
}

static void read_lost_file(void) { read_spec_file("STUB_NVML_LOST_FILE", parse_lost); }

static void parse_env(void) {
    const char *v;
    count = 4;
    if ((v = getenv("STUB_NVML_COUNT"))) count = atoi(v);
    if (count < 0) count = 0;
    if (count > MAX_GPUS) count = MAX_GPUS;
    if ((v = getenv("STUB_NVML_NAME"))) name = v;
    if ((v = getenv("STUB_NVML_MEMORY_MB"))) memory_mb = strtoull(v, NULL, 10);
    parse_lost((v = getenv("STUB_NVML_LOST")) ? v : "");
    parse_memory((v = getenv("STUB_NVML_MEMORY")) ? v : "");
    xid_count = xid_next = 0;
    if ((v = getenv("STUB_NVML_XID"))) {
        const char *p = v;
        while (*p && xid_count < MAX_EVENTS) {
            int gpu, code;
            if (sscanf(p, "%d:%d", &gpu, &code) == 2) {
                xid_gpu[xid_count] = gpu;
                xid_code[xid_count++] = code;
            }
            while (*p && *p != ',') p++;
            if (*p == ',') p++;
        }
    }
}

static int device_index(nvmlDevice_t d) {
    long i = d - devices;
    return (i >= 0 && i < count) ? (int)i : -1;
}

/* Common checks for a per-device query: returns an NVML code, sets *index. */
static int check(nvmlDevice_t d, int *index) {
    if (!initialized) return NVML_ERROR_UNINITIALIZED;
    *index = device_index(d);
    if (*index < 0) return NVML_ERROR_INVALID_ARGUMENT;
    read_lost_file();
    if (lost[*index]) return NVML_ERROR_GPU_IS_LOST;
    return NVML_SUCCESS;
}

static int copy_string(const char *s, char *buf, unsigned int len) {
    if (!buf) return NVML_ERROR_INVALID_ARGUMENT;
    if (strlen(s) + 1 > len) return NVML_ERROR_INSUFFICIENT_SIZE;
    strcpy(buf, s);
    return NVML_SUCCESS;
}

int nvmlInitWithFlags(unsigned int flags) {
    (void)flags;
    if (getenv("STUB_NVML_NO_DRIVER")) return NVML_ERROR_DRIVER_NOT_LOADED;
    parse_env();
    initialized++;
    return NVML_SUCCESS;
}

int nvmlInit_v2(void) { return nvmlInitWithFlags(0); }
int nvmlInit(void) { return nvmlInitWithFlags(0); }

int nvmlShutdown(void) {
    if (!initialized) return NVML_ERROR_UNINITIALIZED;
    initialized--;
    return NVML_SUCCESS;
}

const char *nvmlErrorString(int result) {
    switch (result) {
    case NVML_SUCCESS: return "Success";
    case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
    case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
    case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
    case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded";
    case NVML_ERROR_TIMEOUT: return "Timeout";
    case NVML_ERROR_GPU_IS_LOST: return "GPU is lost";
    default: return "Unknown Error";
    }
}

int nvmlSystemGetDriverVersion(char *version, unsigned int length) {
    if (!initialized) return NVML_ERROR_UNINITIALIZED;
    return copy_string("550.54.15", version, length);
}

int nvmlDeviceGetCount_v2(unsigned int *n) {
    if (!initialized) return NVML_ERROR_UNINITIALIZED;
    *n = (unsigned int)count;
    return NVML_SUCCESS;
}

int nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device) {
    if (!initialized) return NVML_ERROR_UNINITIALIZED;
    if (index >= (unsigned int)count) return NVML_ERROR_INVALID_ARGUMENT;
    *device = &devices[index];
    return NVML_SUCCESS;
}

int nvmlDeviceGetIndex(nvmlDevice_t device, unsigned int *index) {
    int i, rc = check(device, &i);
    if (rc) return rc;
    *index = (unsigned int)i;
    return NVML_SUCCESS;
}

int nvmlDeviceGetName(nvmlDevice_t device, char *buf, unsigned int length) {
    int i, rc = check(device, &i);
    return rc ? rc : copy_string(name, buf, length);
}

int nvmlDeviceGetUUID(nvmlDevice_t device, char *buf, unsigned int length) {
    char uuid[96];
    int i, rc = check(device, &i);
    if (rc) return rc;
    snprintf(uuid, sizeof uuid, "GPU-5eb5c0de-0000-4000-8000-%012d", i);
    return copy_string(uuid, buf, length);
}

int nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *memory) {
    int i, rc = check(device, &i);
    if (rc) return rc;
    memory->total = memory_mb * 1024ULL * 1024ULL;
    memory->used = (unsigned long long)i * 1024ULL * 1024ULL * 1024ULL;
    memory->free = memory->total - memory->used;
    return NVML_SUCCESS;
}

int nvmlDeviceGetUtilizationRates(nvmlDevice_t device, nvmlUtilization_t *rates) {
    int i, rc = check(device, &i);
    if (rc) return rc;
    rates->gpu = (unsigned int)(10 * i);
    rates->memory = (unsigned int)(5 * i);
    return NVML_SUCCESS;
}

int nvmlDeviceGetTemperature(nvmlDevice_t device, int sensor, unsigned int *temp) {
    int i, rc = check(device, &i);
    if (rc) return rc;
    if (sensor != 0) return NVML_ERROR_NOT_SUPPORTED;
    *temp = (unsigned int)(40 + i);
    return NVML_SUCCESS;
}

/* Memory health (ECC, page retirement, row remapping). */
#define NVML_MEMORY_ERROR_TYPE_UNCORRECTED 1
#define NVML_VOLATILE_ECC 0

static int memory_check(nvmlDevice_t device, int *index) {
    int rc = check(device, index);
    if (rc) return rc;
    if (getenv("STUB_NVML_NO_ECC")) return NVML_ERROR_NOT_SUPPORTED;
    read_memory_file();
    return NVML_SUCCESS;
}

int nvmlDeviceGetTotalEccErrors(nvmlDevice_t device, int error_type, int counter_type,
                                unsigned long long *ecc_count) {
    int i, rc = memory_check(device, &i);
    if (rc) return rc;
    if (!ecc_count) return NVML_ERROR_INVALID_ARGUMENT;
    *ecc_count = (error_type == NVML_MEMORY_ERROR_TYPE_UNCORRECTED &&
                  counter_type == NVML_VOLATILE_ECC) ? ecc_unc[i] : 0;
    return NVML_SUCCESS;
}

int nvmlDeviceGetRetiredPagesPendingStatus(nvmlDevice_t device, int *is_pending) {
    int i, rc = memory_check(device, &i);
    if (rc) return rc;
    *is_pending = retired_pending[i];
    return NVML_SUCCESS;
}

int nvmlDeviceGetRemappedRows(nvmlDevice_t device, unsigned int *corr, unsigned int *unc,
                              unsigned int *pending, unsigned int *failure) {
    int i, rc = memory_check(device, &i);
    if (rc) return rc;
    *corr = 0;
    *unc = (unsigned int)(remap_pending[i] + remap_failed[i]);
    *pending = (unsigned int)remap_pending[i];
    *failure = (unsigned int)remap_failed[i];
    return NVML_SUCCESS;
}

#ifndef STUB_NO_EVENTS
static int event_set_token;

int nvmlEventSetCreate(nvmlEventSet_t *set) {
    if (!initialized) return NVML_ERROR_UNINITIALIZED;
    *set = (nvmlEventSet_t)&event_set_token;
    return NVML_SUCCESS;
}

int nvmlDeviceRegisterEvents(nvmlDevice_t device, unsigned long long types, nvmlEventSet_t set) {
    int i, rc = check(device, &i);
    (void)set;
    if (rc) return rc;
    registered[i] |= types;
    return NVML_SUCCESS;
}

int nvmlEventSetWait_v2(nvmlEventSet_t set, nvmlEventData_t *data, unsigned int timeout_ms) {
    (void)set;
    (void)timeout_ms; /* never blocks: pending events or a timeout at once */
    if (!initialized) return NVML_ERROR_UNINITIALIZED;
    while (xid_next < xid_count) {
        int gpu = xid_gpu[xid_next], code = xid_code[xid_next];
        xid_next++;
        if (gpu < 0 || gpu >= count || !(registered[gpu] & XID_CRITICAL_EVENT)) continue;
        memset(data, 0, sizeof *data);
        data->device = &devices[gpu];
        data->eventType = XID_CRITICAL_EVENT;
        data->eventData = (unsigned long long)code;
        return NVML_SUCCESS;
    }
    return NVML_ERROR_TIMEOUT;
}

int nvmlEventSetFree(nvmlEventSet_t set) {
    (void)set;
    return initialized ? NVML_SUCCESS : NVML_ERROR_UNINITIALIZED;
}
#endif
