import { TaskLibHost } from '../../../common/src/tasklib-host';
import { runWithCancellation } from '../../../common/src/cancel';
import { run } from './main';

runWithCancellation((signal) => run(new TaskLibHost(), signal));
