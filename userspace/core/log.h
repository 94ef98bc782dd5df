/* log.h - leveled logging to stderr (journald picks it up). Never log secrets:
 * tokens, cookies, client secrets and keys stay out of every message. */
#ifndef EG_LOG_H
#define EG_LOG_H

enum eg_log_level { EG_LOG_ERROR, EG_LOG_WARN, EG_LOG_INFO, EG_LOG_DEBUG };
extern enum eg_log_level eg_log_threshold;

void eg_log(enum eg_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int eg_log_set_level(const char *name); /* 0 ok, -1 unknown name */

#define log_err(...) eg_log(EG_LOG_ERROR, __VA_ARGS__)
#define log_warn(...) eg_log(EG_LOG_WARN, __VA_ARGS__)
#define log_info(...) eg_log(EG_LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                                                  \
	do {                                                                            \
		if (eg_log_threshold >= EG_LOG_DEBUG)                                   \
			eg_log(EG_LOG_DEBUG, __VA_ARGS__);                              \
	} while (0)

#endif
