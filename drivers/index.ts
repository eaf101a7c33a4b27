// The drivers the gateway knows. Each factory returns null when its driver is disabled.
import type { DriverFactory } from '../gateway/driver.js';
import { createCameraDriver } from './camera/index.js';
import { createModbusDriver } from './modbus/index.js';
import { createMqttDriver } from './mqtt/index.js';
import { createSimulatorDriver } from './simulator/index.js';

export const defaultDrivers: readonly DriverFactory[] = [createMqttDriver, createModbusDriver, createSimulatorDriver, createCameraDriver];
