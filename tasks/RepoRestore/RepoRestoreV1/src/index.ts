// First: takes secret variables task-lib would echo at load time out of the environment.
import '../../../common/src/early-secrets';
import { TaskLibHost } from '../../../common/src/tasklib-host';
import { runWithCancellation } from '../../../common/src/cancel';
import { run } from './main';

runWithCancellation((signal) => run(new TaskLibHost(), signal));
