/* pipeline.h: the graph of component instances built from `service.pipelines`
 * (core-internal).
 *
 * A receiver or exporter used by several pipelines is one instance; each pipeline has its own
 * processor instances. Start order: exporters, processors, receivers; shutdown runs the other
 * way, stage by stage, so that data drains downstream. */
#ifndef OM_PIPELINE_H
#define OM_PIPELINE_H

#include "config.h"
#include "om.h"
#include "telemetry.h"

typedef struct om_graph om_graph_t;

/* Validate every component config and the pipelines, then (unless validate_only) create the
 * instances. No I/O. Every problem is added to d with file:line:column and OM_ECONFIG is
 * returned; *out is NULL then. The config must outlive the graph. */
int om_graph_build(const om_config_t *cfg, om_host_t *host, bool validate_only, om_graph_t **out,
                   om_diags_t *d);
/* Start exporters, processors, receivers. On failure err says which component and why; the
 * caller then shuts the graph down (shutdown is safe for components never started). */
int om_graph_start(om_graph_t *g, om_err_t *err);
/* Shut down stage by stage; done is called once when every component has finished. */
void om_graph_shutdown(om_graph_t *g, om_done_fn done, void *arg);
/* Destroy the instances (after shutdown's done) and free the graph. */
void om_graph_free(om_graph_t *g);
/* service::telemetry::logs, for the service to apply (log.h). */
struct om_log_cfg;
/* service::telemetry::metrics and resource, for the service's endpoint (telemetry.h). */
const om_telemetry_cfg_t *om_graph_telemetry_cfg(const om_graph_t *g);
const struct om_log_cfg *om_graph_log_cfg(const om_graph_t *g);
/* Tests: what the receivers of pipeline `id` ("traces/in") hand its data to (its first
 * processor, or the fan-out over its exporters and connectors), or NULL when there is no such
 * pipeline or the graph was built for validation only. */
const om_consumer_t *om__graph_entry(const om_graph_t *g, const char *id);

/* A fan-out: one batch handed to n consumers (a receiver's pipelines, a pipeline's exporters).
 * mutates[i] says that list[i] changes data (OM_CAP_MUTATES_DATA): the read-only consumers
 * are called first, then the mutating ones, each in list order, and the last one called gets
 * the caller's reference (the others a reference each). NULL when out of memory. */
typedef struct om__fanout om__fanout_t;
om__fanout_t *om__fanout_new(const om_consumer_t *list, const bool *mutates, size_t n);
void om__fanout_free(om__fanout_t *f);
/* The om_consume_fn of a fan-out (self: the om__fanout_t). */
int om__fanout_consume(void *self, om_batch_t *batch);

/* A pipeline's leading run of OM_CAP_OFF_LOOP processors (offloop.c). Made before the run's
 * processors are created: its rest (what follows the run) is set first, and the run's last
 * processor gets om__stage_handoff as its next; then its head (the run's first processor).
 * om__stage_entry is what receivers and connectors hand the pipeline's data to. The graph
 * frees it after its processors. NULL when out of memory. */
typedef struct om__stage om__stage_t;
om__stage_t *om__stage_new(void);
void om__stage_free(om__stage_t *st);
void om__stage_set_rest(om__stage_t *st, om_consumer_t rest);
void om__stage_set_head(om__stage_t *st, om_consumer_t head);
om_consumer_t om__stage_handoff(om__stage_t *st);
om_consumer_t om__stage_entry(om__stage_t *st);

#endif
